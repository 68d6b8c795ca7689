"""`make bench`, HTTP part: /v1/moderate against the in-process scorer, in one run.

Starts the real service (uvicorn, one worker) on a free local port with a throw-away database,
then measures: throughput with batches of 32 through HTTP vs `Model.predict` in this process on
the same texts, and single-comment latency with 8 concurrent clients.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from models.registry import Registry, default_registry_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _test_texts(n: int) -> list[str]:
    from training.dataset import build_dataset

    df = build_dataset()
    test = df[df["split"] == "test"].sample(frac=1.0, random_state=0)
    return [t[:2000] for t in test["text"].head(n).tolist()]


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the service did not become ready within 60 s")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the HTTP benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.bench_api", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="test comments for the batch throughput")
    parser.add_argument("--latency-requests", type=int, default=400, help="single-comment requests")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--model", help="artifact to serve and time (default: the active model)")
    args = parser.parse_args(argv)

    registry_dir = default_registry_dir(os.environ).resolve()
    model = Registry(registry_dir).load(args.model)
    texts = _test_texts(args.n)
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]

    model.predict(batches[0])
    start = time.perf_counter()
    for batch in batches:
        model.predict(batch)
    in_process = len(texts) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        served_registry = registry_dir
        if args.model:
            # A throw-away registry that sees the same artifacts, with the chosen one active: the
            # real registry's active model is left alone.
            served_registry = Path(tmp) / "registry"
            served_registry.mkdir()
            if (registry_dir / "artifacts").is_dir():
                (served_registry / "artifacts").symlink_to(registry_dir / "artifacts")
            Registry(served_registry).promote(model.id, actor="bench")
        env = {
            **os.environ,
            "MODERATION_DATA_DIR": tmp,
            "MODERATION_REGISTRY_DIR": str(served_registry),
            "MODERATION_RATE_LIMIT_PER_SECOND": "0",
            "MODERATION_WEBHOOKS_ENABLED": "false",
            "MODERATION_LOG_LEVEL": "WARNING",
        }
        key = subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", "create", "--role", "admin"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = _free_port()
        proc = _start(env, port)
        try:
            url = f"http://127.0.0.1:{port}/v1/moderate"
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(headers=headers, timeout=60) as client:
                client.post(url, json={"texts": batches[0]}).raise_for_status()
                start = time.perf_counter()
                for batch in batches:
                    client.post(url, json={"texts": batch}).raise_for_status()
                http = len(texts) / (time.perf_counter() - start)

            latencies: list[float] = []
            lock = threading.Lock()
            per_client = args.latency_requests // args.clients

            def worker(offset: int) -> None:
                with httpx.Client(headers=headers, timeout=60) as c:
                    for i in range(per_client):
                        text = texts[(offset * per_client + i) % len(texts)]
                        t0 = time.perf_counter()
                        c.post(url, json={"texts": [text]}).raise_for_status()
                        with lock:
                            latencies.append((time.perf_counter() - t0) * 1000)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.clients)]
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    print(f"\nHTTP /v1/moderate, model {model.id} ({model.info.kind}), {len(texts)} test comments, spans on")
    print(f"  in-process Model.predict, batches of 32 : {in_process:8.0f} comments/s")
    print(
        f"  HTTP /v1/moderate, batches of 32        : {http:8.0f} comments/s ({http / in_process:.0%} of in-process)"
    )
    print(
        f"  single comment, {args.clients} concurrent clients     : p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, {len(latencies) / wall:.0f} requests/s"
    )
    # Little's law: closed-loop clients that send their next comment as soon as the last returns
    # see a mean latency of clients / throughput, so the scorer's best batched rate bounds it.
    print(
        f"  floor for {args.clients} closed-loop clients at the in-process rate: "
        f"{args.clients / in_process * 1000:.1f} ms mean latency (Little's law)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
