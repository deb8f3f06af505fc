"""Benchmark: the HTTP path (issue 14, goal 3): QMS's requests against a no-middleware Django view, per busy core.

On a fresh PostgreSQL database with production settings (Redis store, cache and throttles), the bench makes
real fans (joined to a paused event through `admission.join`) and real admissions (`admit` operation), then
starts, for each server way (`--servers`), two one-process servers on that database:

- `daphne-stock`: Daphne with Django's own `ASGIHandler` (the way QMS served HTTP before issue 14);
- `daphne`: Daphne with QMS's one-hop handler (`qms_project/http.py`), as `manage.py serve` runs it now;
- `gunicorn`: gunicorn (one gthread worker, `BENCH_GUNICORN_THREADS` threads) with `qms_project/wsgi.py`;

one serving QMS, one serving the baseline (`bench/http_baseline.py`: QMS's settings, `MIDDLEWARE = []`, one
`JsonResponse` view). wrk (a separate process, one thread, `--connections` keep-alive connections) drives each
request for `--duration` seconds, every request of every server way in turn, `--repeat` times (A B A B):
the fan's status poll and join (`GET`/`POST /api/events/<id>/queue/`, Bearer access tokens of many fans),
verify and redeem (`POST /api/admissions/verify/`, each token redeemed at most once), `/healthz`, `/readyz`
and the baseline. Server CPU comes from /proc; a rate per busy core is requests/s ÷ cores the server used.

    .venv/bin/python bench/http_path.py [--servers daphne-stock daphne gunicorn] [--repeat 3] [--duration 4]

Requires wrk (`apt-get install wrk`). Traffic goes to 127.0.0.1 only; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import psycopg  # noqa: E402
import redis  # noqa: E402

from bench.procstat import cpu_seconds  # noqa: E402
from tests.e2e.servers import PYTHON, Process, base_env, free_port, manage, wait_http  # noqa: E402
from tests.e2e.topology import ADMIN_DSN, REDIS_DB_URL, require_postgres_and_redis  # noqa: E402

SERVERS = ("daphne-stock", "daphne", "gunicorn")
REQUESTS = ("status", "join", "verify", "redeem", "healthz", "readyz", "baseline")

# Run by `manage.py shell` against the bench's database: fans joined to a paused event (their status poll
# and join answer `waiting`), and admissions of another event (the tokens verify and redeem use).
SEED = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from events.models import Event
from queues import admission
from queues.models import Admission
from queues.operations import perform
User = get_user_model()
User.objects.bulk_create([User(username=f"fan{i:06d}") for i in range(FANS)]
                         + [User(username=f"admitted{i:06d}") for i in range(ADMISSIONS)])
opens = timezone.now() - timedelta(minutes=1)
waiting = Event.objects.create(name="HTTP bench: waiting", paused=True, max_active=1, sale_starts_at=opens,
                               reservation_url="https://tickets.example/reserve")
admitted = Event.objects.create(name="HTTP bench: admitted", paused=True, max_active=ADMISSIONS,
                                token_ttl_seconds=3600, sale_starts_at=opens,
                                reservation_url="https://tickets.example/reserve")
fans = list(User.objects.filter(username__startswith="fan"))
for user in fans:
    admission.join(waiting, user)
for user in User.objects.filter(username__startswith="admitted"):
    admission.join(admitted, user)
perform("admit", admitted, count=ADMISSIONS)
print(json.dumps({"waiting": waiting.id, "admitted": admitted.id,
                  "access": [str(AccessToken.for_user(u)) for u in fans],
                  "tokens": list(Admission.objects.filter(event=admitted).values_list("token", flat=True))}))
"""

# wrk's script: the requests come from a file, one per line (method, path, bearer token or "-", body or "-",
# tab-separated), and are sent in turn; each is sent at most once per pass over the file.
WRK_SCRIPT = """
local requests, index = {}, 0
init = function(args)
  for line in io.lines(args[1]) do
    local method, path, bearer, body = line:match("^(%S+)\\t(%S+)\\t(%S+)\\t(.*)$")
    local headers = {["Accept"] = "application/json"}
    if bearer ~= "-" then headers["Authorization"] = "Bearer " .. bearer end
    if body == "-" then body = nil else headers["Content-Type"] = "application/json" end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""


def create_database() -> tuple[str, str]:
    require_postgres_and_redis()
    name = f"qms_bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str, prefix: str) -> None:
    """The bench's database and its Redis keys (store, cache, throttles) go."""
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    client = redis.Redis.from_url(REDIS_DB_URL)
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)


def request_lines(kind: str, seeded: dict, run: int, per_run: int) -> list[str]:
    """The requests of one kind, as wrk's script reads them; redeem takes a fresh slice of tokens per run."""
    waiting, admitted = seeded["waiting"], seeded["admitted"]
    if kind in ("status", "join"):
        method, body = ("GET", "-") if kind == "status" else ("POST", "{}")
        return [f"{method}\t/api/events/{waiting}/queue/\t{access}\t{body}" for access in seeded["access"]]
    if kind in ("verify", "redeem"):
        tokens = seeded["tokens"]
        if kind == "redeem":
            tokens = tokens[run * per_run:(run + 1) * per_run]
        return ["POST\t/api/admissions/verify/\t-\t"
                + json.dumps({"token": t, "redeem": kind == "redeem", "event": admitted}) for t in tokens]
    return [f"GET\t/{kind}\t-\t-"]


WRK_NUMBER = r"([\d.]+)(us|ms|s)"


def parse_wrk(output: str) -> dict:
    """Requests, rate, latency percentiles and non-2xx answers from wrk's report."""
    def millis(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+" + WRK_NUMBER, output)
    p99 = re.search(r"99%\s+" + WRK_NUMBER, output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {"requests": int(done.group(1)), "per_s": float(rate.group(1)),
            "p50_ms": millis(*p50.groups()) if p50 else None, "p99_ms": millis(*p99.groups()) if p99 else None,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def drive(port: int, lines: list[str], tmp: Path, args) -> str:
    """wrk's report of one run against 127.0.0.1:port with these requests."""
    script, requests = tmp / "requests.lua", tmp / "requests.txt"
    script.write_text(WRK_SCRIPT)
    requests.write_text("\n".join(lines) + "\n")
    command = ["wrk", "--threads", "1", "--connections", str(args.connections),
               "--duration", f"{round(args.duration)}s", "--timeout", "10s", "--latency", "--script", str(script),
               f"http://127.0.0.1:{port}", "--",
               str(requests)]
    return subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 30, check=True).stdout


def measured(process: Process, run) -> dict:
    pid = process.proc.pid
    cpu, started = cpu_seconds(pid), time.perf_counter()
    result = parse_wrk(run())
    elapsed = time.perf_counter() - started
    result["server_cpu"] = round((cpu_seconds(pid) - cpu) / elapsed, 2)
    result["per_core_s"] = round(result["per_s"] / max(result["server_cpu"], 0.01), 1)
    return result


def start_servers(servers: list[str], env: dict, tmp: Path) -> dict[tuple[str, str], tuple[Process, int]]:
    started = {}
    for server in servers:
        for app in ("qms", "baseline"):
            port = free_port()
            process = Process(f"{server}-{app}", [PYTHON, str(ROOT / "bench" / "http_server.py"), server, app,
                                                   str(port)], env, tmp)
            started[(server, app)] = (process, port)
    for (_server, app), (process, port) in started.items():
        wait_http(f"http://127.0.0.1:{port}/{'readyz' if app == 'qms' else 'baseline'}", timeout=60,
                  process=process)
    return started


def run_all(servers: dict, seeded: dict, tmp: Path, args) -> list[dict]:
    """Every request of every server way in turn, `--repeat` times; one row per run."""
    rows = []
    per_run = len(seeded["tokens"]) // (args.repeat * len({s for s, _ in servers}))  # tokens per redeem run
    redeem_runs = 0
    for (_server, app), (_process, port) in servers.items():  # warm-up: imports, thread pools, database pool
        path = "readyz" if app == "qms" else "baseline"
        subprocess.run(["wrk", "-t1", "-c4", "-d1s", f"http://127.0.0.1:{port}/{path}"], capture_output=True,
                       timeout=30)
    for repeat in range(args.repeat):
        for server in sorted({s for s, _ in servers}, key=SERVERS.index):
            for kind in REQUESTS:
                process, port = servers[(server, "baseline" if kind == "baseline" else "qms")]
                lines = request_lines(kind, seeded, redeem_runs, per_run)
                redeem_runs += kind == "redeem"
                row = measured(process, lambda: drive(port, lines, tmp, args))  # noqa: B023 - called at once
                row.update(server=server, request=kind, repeat=repeat)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Medians per server way and request, and each request's ratio to that way's baseline."""
    summary: dict = {}
    for server in sorted({r["server"] for r in rows}, key=SERVERS.index):
        summary[server] = {}
        for kind in REQUESTS:
            runs = [r for r in rows if r["server"] == server and r["request"] == kind]
            summary[server][kind] = {field: round(statistics.median(r[field] for r in runs), 2)
                                     for field in ("per_s", "p50_ms", "p99_ms", "server_cpu", "per_core_s")}
            summary[server][kind]["non_2xx"] = sum(r["non_2xx"] for r in runs)
        base = summary[server]["baseline"]
        for kind in REQUESTS:
            row = summary[server][kind]
            row["ratio_per_core"] = round(row["per_core_s"] / base["per_core_s"], 2)
            row["ratio_per_s"] = round(row["per_s"] / base["per_s"], 2)
    return summary


def report(summary: dict, args) -> None:
    print(f"\n{args.connections} keep-alive connections, {args.duration} s per run, medians of {args.repeat}:")
    print("| server | request | requests/s | p50 ms | p99 ms | non-2xx | server CPU | per busy core "
          "| ÷ baseline (per core) | ÷ baseline (req/s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server, kinds in summary.items():
        for kind, row in kinds.items():
            print(f"| {server} | {kind} | {row['per_s']:,.0f} | {row['p50_ms']} | {row['p99_ms']} | {row['non_2xx']} "
                  f"| {row['server_cpu']} | {row['per_core_s']:,.0f} | {row['ratio_per_core']} "
                  f"| {row['ratio_per_s']} |")


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(summary)
    colours = {"daphne-stock": "tab:gray", "daphne": "tab:blue", "gunicorn": "tab:green"}
    for index, (server, kinds) in enumerate(summary.items()):
        values = [kinds[kind]["per_core_s"] for kind in REQUESTS]
        bars = ax.bar([i + index * width for i in range(len(REQUESTS))], values, width, label=server,
                      color=colours.get(server))
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks([i + width * (len(summary) - 1) / 2 for i in range(len(REQUESTS))],
                  ["status poll\nGET queue", "join\nPOST queue", "verify", "redeem", "/healthz", "/readyz",
                   "baseline\n(no middleware)"])
    ax.set_ylabel("requests/s per busy server core")
    ax.set_title("HTTP path: QMS's requests against a no-middleware Django view, same server, same run")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    parser.add_argument("--fans", type=int, default=500, help="fans whose tokens poll and join")
    parser.add_argument("--admissions", type=int, default=9000,
                        help="tokens for verify and redeem (each redeem run takes its own share)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "http_path.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "perf" / "http_path.png"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # still drop the database, stop servers
    started = time.perf_counter()
    results: dict = {"cpus": os.cpu_count(), "args": vars(args), "load_average_before": os.getloadavg()}
    name, database_url = create_database()
    servers: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key = tmp / "signing-key.pem"
        (tmp / "prometheus").mkdir()
        prefix = f"qms-bench-{name}"
        env = base_env(DATABASE_URL=database_url, QMS_REDIS_URL=REDIS_DB_URL, QMS_KEY_PREFIX=prefix,
                       QMS_SIGNING_KEY_FILE=str(key), PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
                       # The join's throttle (30/min per fan) would answer 429 to a benchmark, not measure it.
                       QMS_JOIN_RATE_PER_USER="1000000/s")
        try:
            from queues.tokens import generate_private_pem

            key.write_text(generate_private_pem())
            manage("migrate", "--noinput", "-v0", env=env)
            seed = SEED.replace("ADMISSIONS", str(args.admissions)).replace("FANS", str(args.fans))
            seeded = json.loads(manage("shell", "-c", seed, env=env, timeout=600).splitlines()[-1])
            servers = start_servers(args.servers, env, tmp)
            results["runs"] = run_all(servers, seeded, tmp, args)
        finally:
            for process, _ in servers.values():
                process.stop()
            drop_database(name, prefix)
    results["summary"] = summarise(results["runs"])
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    report(results["summary"], args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    plot(results["summary"], Path(args.plot))
    print(f"\nwrote {args.out} and {args.plot} ({results['wall_seconds']} s)")


if __name__ == "__main__":
    main()
