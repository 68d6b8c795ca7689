"""Helpers for tests that run the real server: uvicorn subprocesses and a webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from service.auth import Role, create_key
from service.storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port that was free a moment ago (bind port 0 and let it go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_keys(url: str, specs: dict[str, tuple[Role, str | None]]) -> dict[str, str]:
    """Create API keys straight in the database: {name: secret}."""
    database = Database.from_url(url)
    try:
        with database.transaction() as repo:
            return {name: create_key(repo, role, site).secret for name, (role, site) in specs.items()}
    finally:
        database.dispose()


class Server:
    """`uvicorn service.app:create_app` in a subprocess, configured through MODERATION_* variables."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        """Start on a free port and wait until /readyz says ok."""
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "service.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self.log.open("ab") as out:
            out.write(f"--- start on port {self.port}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server not ready after {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no flushing, like a crash or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate (SIGKILL if it does not exit within 10 s); safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@contextmanager
def servers(*all_servers: Server) -> Iterator[None]:
    """Make sure every server process is gone when the block ends, whatever happened."""
    try:
        yield
    finally:
        for server in all_servers:
            server.stop()


class Receiver:
    """A webhook endpoint in a thread: answers 200 (after `delay` seconds) and records each POST."""

    def __init__(self, delay: float = 0.0):
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if delay:
                    time.sleep(delay)
                with receiver._lock:
                    receiver.deliveries.append((self.headers["X-Moderation-Delivery"], json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def counts(self) -> Counter[str]:
        """How often each delivery id arrived."""
        with self._lock:
            return Counter(delivery for delivery, _ in self.deliveries)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for _, body in self.deliveries]


def server_env(data_dir: Path, registry_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """MODERATION_* variables for a test server: no rate limit, fast webhook polling."""
    return {
        "MODERATION_DATA_DIR": str(data_dir),
        "MODERATION_REGISTRY_DIR": str(registry_dir),
        "MODERATION_DATABASE_URL": database_url,
        "MODERATION_RATE_LIMIT_PER_SECOND": "0",
        "MODERATION_MODEL_WATCH_SECONDS": "0",
        "MODERATION_WEBHOOK_POLL_SECONDS": "0.1",
        "MODERATION_WEBHOOK_BACKOFF_SECONDS": "0.2",
        "MODERATION_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
        **extra,
    }
