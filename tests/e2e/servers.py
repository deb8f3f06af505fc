"""Start QMS as real processes for end-to-end tests: free ports, readiness, deadlines, clean shutdown.

`EmbeddedServer` is the one way tests start `manage.py serve` (the embedded default);
`topology.py` starts the production topology.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now: all bound at once, so the kernel cannot hand one out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_until(condition: Callable[[], object], timeout: float, failure: str | Callable[[], str],
               interval: float = 0.1):
    """Poll `condition` until it is truthy (returned) or `timeout` seconds pass (AssertionError: `failure`)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout}s: {failure() if callable(failure) else failure}")
        time.sleep(interval)
    return result


async def wait_until_async(condition: Callable[[], object], timeout: float, failure: str | Callable[[], str],
                           interval: float = 0.05):
    """`wait_until` inside an event loop: sleeps without blocking the other coroutines."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout}s: {failure() if callable(failure) else failure}")
        await asyncio.sleep(interval)
    return result


async def within(timeout: float, what: str, awaitable: Awaitable):
    """Await with a deadline; a timeout fails with what was awaited."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: nothing after {timeout}s") from None


def base_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "QMS_REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update({"DJANGO_SETTINGS_MODULE": "qms_project.settings", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def manage(*args: str, env: dict, timeout: float = 120) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Process:
    """A child process with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def wait_http(url: str, timeout: float = 30, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s" + (f"\n{process.log()}" if process else ""))


def http_json(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}


class AccessTokens:
    """JWT access tokens of the logins, each obtained once from `base` (`POST /api/auth/token/`)."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def get(self, base: str, login: tuple[str, str]) -> str:
        if login[0] not in self._tokens:
            status, body = http_json("POST", f"{base}/api/auth/token/", {"username": login[0], "password": login[1]})
            assert status == 200, body
            self._tokens[login[0]] = body["access"]
        return self._tokens[login[0]]


class EmbeddedServer:
    """`manage.py serve` (the embedded default) on a free port with its own SQLite file, migrated and seeded.

    `seed` lists `manage.py` commands run before the start; their outputs are in `seeded`.
    """

    def __init__(self, workdir: Path, *, seed: Sequence[Sequence[str]] = (("seed_demo",),),
                 ready_path: str = "/readyz", **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = base_env(DATABASE_URL=f"sqlite:///{workdir / 'qms.sqlite3'}", PORT=str(self.port), **env)
        manage("migrate", "--noinput", "-v0", env=self.env)
        self.seeded = [manage(*command, env=self.env) for command in seed]
        self.process = Process("serve", [PYTHON, "manage.py", "serve"], self.env, workdir)
        try:
            wait_http(f"{self.base}{ready_path}", process=self.process)
        except Exception:
            self.process.stop()
            raise

    def log(self) -> str:
        return self.process.log()

    def stop(self) -> None:
        self.process.stop()
