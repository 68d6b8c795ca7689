from __future__ import annotations

import secrets

import pytest
import redis

from service.ratelimit import MemoryRateLimiter, NoLimit, RedisRateLimiter, make_rate_limiter
from tests.service.conftest import ApiFactory

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_memory_bucket_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == pytest.approx(0.5)
    assert limiter.acquire("other") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    clock.now += 100
    assert [limiter.acquire("k") for _ in range(4)][-1] > 0  # never more than the burst


def test_make_rate_limiter() -> None:
    assert isinstance(make_rate_limiter(0, 10, None), NoLimit)
    assert isinstance(make_rate_limiter(5, 10, None), MemoryRateLimiter)


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis does not answer at {REDIS_URL}: {type(exc).__name__}")
    return REDIS_URL


def test_redis_bucket_is_shared_between_limiters(redis_url: str) -> None:
    prefix = f"moderation-test:{secrets.token_hex(4)}:"
    first = RedisRateLimiter(redis_url, rate=0.5, burst=2, prefix=prefix)
    second = RedisRateLimiter(redis_url, rate=0.5, burst=2, prefix=prefix)  # another process, say
    assert first.acquire("k") == 0.0 and second.acquire("k") == 0.0
    wait = first.acquire("k")
    assert 1.0 < wait <= 2.0
    assert second.acquire("other") == 0.0
    first.close()
    second.close()


def test_redis_outage_allows_requests() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", rate=1, burst=1)
    assert limiter.acquire("k") == limiter.acquire("k") == 0.0


def test_api_answers_429_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_per_second=0.2, rate_limit_burst=2)
    url = "/v1/queue?site=example"
    assert [api.client.get(url, headers=api.auth("moderator")).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    r = api.client.get(url, headers=api.auth("moderator"))
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 5
    # Another key has its own bucket.
    assert api.client.get(url, headers=api.auth("moderator2")).status_code == 200


def test_api_shares_the_limit_through_redis(make_api: ApiFactory, redis_url: str) -> None:
    settings = {"rate_limit_per_second": 0.2, "rate_limit_burst": 1, "redis_url": redis_url}
    one, two = make_api(**settings), make_api(**settings)
    two.keys = one.keys  # the same database, two "processes"
    url = "/v1/queue?site=example"
    assert one.client.get(url, headers=one.auth("moderator")).status_code == 200
    assert two.client.get(url, headers=two.auth("moderator")).status_code == 429
