"""Benchmark: a fan's whole arrival (issue 14, goal 4), as CPU per arriving fan across every server process.

A fan who is logged in (a session cookie) opens the waiting-room page, fetches what the page names (the
stylesheet, the icon, the script, the JavaScript catalog), then opens the socket, which joins the queue, and
waits for `queued`. `--fans` fans arrive at `--rate` per second from `--clients` forked client processes;
the CPU of every server process (Daphnes, nginx master and workers) over the arrivals, less what the same
processes use idle for as long, divided by the fans, is the cost of one arrival. Four setups, each on its own
fresh database, run in turn `--repeat` times (fresh fans each run), so noise hits them alike:

- `embedded-source`: `manage.py serve` (the embedded default, SQLite, one process), static files as they are
  in static/ (no collectstatic: uncompressed, `max-age=60`), as `make run` served them before issue 14;
- `embedded`: the same after `collectstatic` (as `make run` does now): WhiteNoise serves the gzip copy of
  content-hashed files, `immutable`, cached for good;
- `production-proxied`: the Procfile's web1 and web2 (Daphne, PostgreSQL, Redis) behind nginx with every
  path proxied to them, static files too (WhiteNoise in Daphne), as docs/DEPLOYMENT.md configured nginx before;
- `production`: the Procfile's front as it is now: deploy/nginx.conf serves the collected static files itself,
  pages go to gunicorn (`http`), the socket to web1 and web2.

    .venv/bin/python bench/arrival.py [--fans 300] [--rate 50] [--repeat 3]

Requires nginx (`make nginx`). Traffic stays on 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

from websockets.asyncio.client import connect  # noqa: E402

from bench.procstat import cpu_seconds  # noqa: E402
from deploy.local_nginx import render  # noqa: E402
from tests.e2e.servers import PYTHON, Process, base_env, free_port, free_ports, manage, wait_http  # noqa: E402
from tests.e2e.topology import start_topology, stop_topology  # noqa: E402

HOST = "127.0.0.1"
SETUPS = ("embedded-source", "embedded", "production-proxied", "production")

# Run by `manage.py shell`: fans with a logged-in session each (as after the login form), and a paused event.
SEED = """
import json
from datetime import timedelta
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from events.models import Event
User = get_user_model()
User.objects.bulk_create([User(username=f"arrival{i:06d}") for i in range(FANS)])
sessions = []
for user in User.objects.filter(username__startswith="arrival").order_by("id"):
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash()})
    session.create()
    sessions.append(session.session_key)
event = Event.objects.create(name="Arrival bench", paused=True, max_active=1,
                             sale_starts_at=timezone.now() - timedelta(minutes=1),
                             reservation_url="https://tickets.example/reserve")
print(json.dumps({"event": event.id, "sessions": sessions}))
"""


# --- the setups -----------------------------------------------------------------------------


class Setup:
    """Servers of one setup: where fans connect, and the processes whose CPU an arrival costs."""

    def __init__(self, name: str, port: int, processes: list[Process], event: int, sessions: list[str], stop):
        self.name, self.port, self.processes, self.event, self.sessions = name, port, processes, event, sessions
        self.stop = stop

    def cpu(self) -> float:
        return sum(cpu_seconds(process.proc.pid) for process in self.processes)

    def cpu_by_process(self) -> dict[str, float]:
        return {process.name: cpu_seconds(process.proc.pid) for process in self.processes}


def collect_static(env: dict, root: Path) -> None:
    root.mkdir()
    manage("collectstatic", "--noinput", "-v0", env={**env, "DJANGO_STATIC_ROOT": str(root)})


def seed(env: dict, fans: int) -> dict:
    return json.loads(manage("shell", "-c", SEED.replace("FANS", str(fans)), env=env, timeout=600).splitlines()[-1])


def embedded(tmp: Path, fans: int, collected: bool) -> Setup:
    port = free_port()
    static_root = tmp / "static"
    env = base_env(DATABASE_URL=f"sqlite:///{tmp / 'qms.sqlite3'}", PORT=str(port),
                   DJANGO_STATIC_ROOT=str(static_root))
    if collected:
        collect_static(env, static_root)
    manage("migrate", "--noinput", "-v0", env=env)
    seeded = seed(env, fans)
    process = Process("serve", [PYTHON, "manage.py", "serve", "--port", str(port)], env, tmp)
    wait_http(f"http://{HOST}:{port}/healthz", timeout=60, process=process)
    return Setup("embedded" if collected else "embedded-source", port, [process], seeded["event"],
                 seeded["sessions"], process.stop)


def production(tmp: Path, fans: int, front: bool) -> Setup:
    """The Procfile's web1 and web2 behind deploy/nginx.conf: with `front`, as it is (static files from nginx,
    pages to the Procfile's gunicorn `http`); without, every path proxied to the Daphnes, as before."""
    static_root = tmp / "static"
    http_port, port = free_ports(2)
    topology = start_topology(tmp, 0, processes=(), DJANGO_STATIC_ROOT=str(static_root),
                              QMS_HTTP_PORT=str(http_port), QMS_NGINX_DIR=str(tmp / "nginx"))
    try:
        collect_static(topology.env, static_root)
        names = ["web1", "web2", "http"] if front else ["web1", "web2"]
        for name in names:
            topology.start(name)
        for index in range(2):
            wait_http(f"{topology.base(index)}/readyz", timeout=60, process=topology.processes[f"web{index + 1}"])
        if front:
            wait_http(f"http://{HOST}:{http_port}/healthz", timeout=60, process=topology.processes["http"])
        seeded = seed(topology.env, fans)
        render(tmp / "nginx", port, [http_port] if front else topology.ports, topology.ports, static_root,
               serve_static=front)
        topology.start("proxy")
        wait_http(f"http://{HOST}:{port}/healthz", timeout=30, process=topology.processes["proxy"])
    except BaseException:
        stop_topology(topology)
        raise
    return Setup("production" if front else "production-proxied", port,
                 [topology.processes[name] for name in [*names, "proxy"]], seeded["event"], seeded["sessions"],
                 lambda: stop_topology(topology))


# --- the fans --------------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    status = int((await reader.readline()).split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", ""):
        body = b""
        while size := int((await reader.readline()).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return status, headers, body


async def arrive(port: int, event: int, session: str) -> dict:
    """One fan: the page and what it names on one keep-alive connection (as a browser), then the socket."""
    started = time.perf_counter()
    cookie = f"sessionid={session}"
    reader, writer = await asyncio.open_connection(HOST, port)

    async def get(path: str) -> tuple[int, dict, bytes]:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nCookie: {cookie}\r\n"
                     f"Accept-Encoding: gzip\r\nAccept-Language: en\r\n\r\n".encode())
        return await read_response(reader)

    status, _, page = await get(f"/events/{event}/waiting-room/")
    statuses = [status]
    assets = re.findall(r'(?:href|src)="(/(?:static|jsi18n)/[^"]*)"', page.decode())
    encodings = []
    for asset in assets:
        status, headers, _ = await get(asset)
        statuses.append(status)
        encodings.append(headers.get("content-encoding", "identity"))
    writer.close()
    http_done = time.perf_counter()
    ws = await connect(f"ws://{HOST}:{port}/ws/events/{event}/queue/", proxy=None, compression=None,
                       open_timeout=30, additional_headers={"Cookie": cookie, "Origin": f"http://{HOST}:{port}"})
    first = json.loads(await asyncio.wait_for(ws.recv(), 30))
    return {"ws": ws, "statuses": statuses, "assets": assets, "encodings": encodings, "first": first["type"],
            "http_s": http_done - started, "queued_s": time.perf_counter() - started}


async def fans_arrive(port: int, event: int, sessions: list[str], rate: float, hold: float) -> list[dict]:
    """These fans arrive evenly at `rate` per second; sockets stay open `hold` seconds after the last."""
    async def one(index: int, session: str) -> dict:
        await asyncio.sleep(index / rate)
        try:
            return await arrive(port, event, session)
        except Exception as exc:  # a failed arrival is counted, not fatal
            return {"error": f"{type(exc).__name__}: {exc}"}

    results = await asyncio.gather(*(one(i, s) for i, s in enumerate(sessions)))
    await asyncio.sleep(hold)
    for result in results:
        if "ws" in result:
            await result.pop("ws").close()
    return results


def client_process(port: int, event: int, sessions: list[str], rate: float, hold: float, out) -> None:
    out.send(asyncio.run(fans_arrive(port, event, sessions, rate, hold)))


def storm(setup: Setup, sessions: list[str], rate: float, clients: int, idle_seconds: float) -> dict:
    """One run: idle CPU, then the arrivals (client processes share them), CPU per fan over the arrivals."""
    idle_cpu, started = setup.cpu(), time.perf_counter()
    time.sleep(idle_seconds)
    idle_rate = (setup.cpu() - idle_cpu) / (time.perf_counter() - started)
    pipes, workers = [], []
    context = multiprocessing.get_context("fork")
    before, before_by, started = setup.cpu(), setup.cpu_by_process(), time.perf_counter()
    for index in range(clients):
        receive, send = context.Pipe(duplex=False)
        share = sessions[index::clients]
        worker = context.Process(target=client_process,
                                 args=(setup.port, setup.event, share, rate / clients, 1.0, send))
        worker.start()
        pipes.append(receive)
        workers.append(worker)
    results = []
    for receive in pipes:
        if not receive.poll(len(sessions) / rate + 90):
            raise TimeoutError("a client process did not report in time")
        results.extend(receive.recv())
    for worker in workers:
        worker.join(10)
    elapsed = time.perf_counter() - started
    used = setup.cpu() - before - idle_rate * elapsed
    by_process = {name: round((cpu - before_by[name]) * 1000 / len(sessions), 2)
                  for name, cpu in setup.cpu_by_process().items()}
    ok = [r for r in results if "error" not in r and r["first"] == "queued" and set(r["statuses"]) == {200}]
    queued = sorted(r["queued_s"] for r in ok)
    return {"setup": setup.name, "fans": len(sessions), "queued": len(ok), "failed": len(sessions) - len(ok),
            "errors": sorted({r.get("error", "")[:120] or str(r["statuses"]) for r in results if r not in ok})[:3],
            "cpu_ms_per_fan": round(used * 1000 / len(sessions), 2),
            "cpu_ms_per_fan_by_process": by_process, "idle_cpu_cores": round(idle_rate, 3),
            "queued_p50_ms": round(queued[len(queued) // 2] * 1000, 1) if queued else None,
            "queued_p99_ms": round(queued[min(len(queued) - 1, int(len(queued) * 0.99))] * 1000, 1)
            if queued else None,
            "assets": ok[0]["assets"] if ok else [], "encodings": ok[0]["encodings"] if ok else []}


# --- report --------------------------------------------------------------------------------


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(9, 4.5))
    names = list(summary)
    values = [summary[name]["cpu_ms_per_fan"] for name in names]
    bars = ax.bar(names, values, color=["tab:gray", "tab:blue", "tab:olive", "tab:green"][:len(names)])
    ax.bar_label(bars, labels=[f"{v:.1f} ms" for v in values], padding=2)
    ax.set_ylabel("server CPU per arriving fan (ms)")
    ax.set_title("A fan's whole arrival: page, static files, socket and join (medians)")
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
    parser.add_argument("--fans", type=int, default=300, help="fans per run")
    parser.add_argument("--rate", type=float, default=50, help="arrivals per second")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--idle-seconds", type=float, default=2.0, help="idle CPU measured before each run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "arrival.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "perf" / "arrival.png"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # still stop servers, drop databases
    started = time.perf_counter()
    results: dict = {"cpus": os.cpu_count(), "args": vars(args), "load_average_before": os.getloadavg(), "runs": []}
    setups: list[Setup] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            total = args.fans * args.repeat
            for name in args.setups:
                workdir = tmp / name
                workdir.mkdir()
                if name.startswith("embedded"):
                    setups.append(embedded(workdir, total, collected=name == "embedded"))
                else:
                    setups.append(production(workdir, total, front=name == "production"))
            for repeat in range(args.repeat):
                for setup in setups:
                    sessions = setup.sessions[repeat * args.fans:(repeat + 1) * args.fans]
                    run = storm(setup, sessions, args.rate, args.clients, args.idle_seconds)
                    run["repeat"] = repeat
                    results["runs"].append(run)
                    print(json.dumps(run), flush=True)
        finally:
            for setup in setups:
                setup.stop()
    summary = {}
    for name in args.setups:
        runs = [r for r in results["runs"] if r["setup"] == name]
        summary[name] = {field: round(statistics.median(r[field] or 0 for r in runs), 2)
                         for field in ("cpu_ms_per_fan", "queued_p50_ms", "queued_p99_ms")}
        summary[name]["failed"] = sum(r["failed"] for r in runs)
        summary[name]["by_process"] = {p: round(statistics.median(r["cpu_ms_per_fan_by_process"][p] for r in runs), 2)
                                       for p in runs[0]["cpu_ms_per_fan_by_process"]}
        summary[name]["fans_per_core_s"] = round(1000 / summary[name]["cpu_ms_per_fan"], 1)
    results["summary"] = summary
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    print("\n| setup | CPU per arriving fan | arrivals/s per busy core | connect → queued p50 / p99 | failed |")
    print("|---|---:|---:|---:|---:|")
    for name, row in summary.items():
        print(f"| {name} | {row['cpu_ms_per_fan']} ms {row['by_process']} | {row['fans_per_core_s']} "
              f"| {row['queued_p50_ms']} / {row['queued_p99_ms']} ms | {row['failed']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    plot(summary, Path(args.plot))
    print(f"\nwrote {args.out} and {args.plot} ({results['wall_seconds']} s)")


if __name__ == "__main__":
    main()
