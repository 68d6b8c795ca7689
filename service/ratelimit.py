"""Per-key token-bucket rate limit: in process, or shared by all processes through Redis."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


class RateLimiter(Protocol):
    """Takes one token for a key: 0.0 when allowed, else the seconds until a token is available."""

    def acquire(self, key: str) -> float: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class NoLimit:
    """A limiter that allows everything (rate 0)."""

    def acquire(self, key: str) -> float:
        return 0.0


class MemoryRateLimiter:
    """Token buckets in this process: `burst` tokens, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


# KEYS[1] bucket; ARGV rate, burst. Uses the server's clock so that all processes agree.
_REDIS_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same token bucket, kept in Redis so that every worker process shares it.

    If Redis does not answer, requests are allowed (and a warning is logged): the rate limit
    protects capacity, and an outage of Redis should not take the API down with it.
    """

    def __init__(self, url: str, rate: float, burst: int, prefix: str = "moderation:ratelimit:"):
        import redis

        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_REDIS_SCRIPT)

    def acquire(self, key: str) -> float:
        import redis

        try:
            result = self._script(keys=[self.prefix + key], args=[self.rate, self.burst])
        except redis.RedisError as exc:
            logger.warning("rate limit not enforced: Redis error %s", type(exc).__name__)
            return 0.0
        return float(result.decode() if isinstance(result, bytes) else result)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def make_rate_limiter(rate: float, burst: int, redis_url: str | None) -> RateLimiter:
    """The limiter the settings ask for."""
    if rate <= 0:
        return NoLimit()
    if redis_url:
        return RedisRateLimiter(redis_url, rate, burst)
    return MemoryRateLimiter(rate, burst)
