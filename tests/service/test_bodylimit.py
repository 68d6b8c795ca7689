from __future__ import annotations

from collections.abc import Iterator

from tests.service.conftest import SITE, ApiFactory


def test_oversized_bodies_are_refused_before_parsing(make_api: ApiFactory) -> None:
    api = make_api(max_body_bytes=2048)
    body = {"site": SITE, "id": "c1", "text": "x" * 4000}
    r = api.client.post("/v1/comments", json=body, headers=api.auth("cms"))
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"site": "example", "id": "c1", "text": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    headers = {**api.auth("cms"), "content-type": "application/json"}
    r = api.client.post("/v1/comments", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert (
        api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("cms")).status_code == 404
    )
    assert api.submit("c1", "small enough")["status"] == "approved"
