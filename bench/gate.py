"""Benchmark: the gate's check (issue 15): `/gate/auth` requests per second per busy core, against `/healthz` of the
same server in the same run.

The bench starts the gate's e2e setting (tests/e2e/gate.py: `manage.py serve`, the stand-in origin, nginx with
the generated configuration), admits one fan through the waiting room and keeps the cookie it lands with. wrk
(one thread, `--connections` keep-alive connections) then asks QMS's server directly, as nginx's `auth_request`
does, for `--duration` seconds each, all kinds in turn, `--repeat` times (A B C D A B C D):

- `healthz`: `GET /healthz`, the cheapest answer the server gives (the yardstick);
- `cookie`: a request of the admitted fan (valid cookie: signature, expiry and the store's ended-sessions check);
- `bypass`: a request under a path-prefix bypass rule, no cookie;
- `no-cookie`: a visitor without a cookie (401 with the waiting room's URL);
- `nginx-cookie`: the admitted fan's request through nginx to the origin (auth_request, then the page), for scale.

`--store redis` runs the server with the Redis store (production's: the gate's online check is a Redis round
trip), `--store memory` with the embedded default. Server CPU comes from /proc; per busy core = requests/s ÷
cores the server used.

    .venv/bin/python bench/gate.py [--store redis|memory] [--repeat 3] [--duration 4] [--connections 16]

Requires nginx and wrk (`make nginx wrk`). Traffic goes to 127.0.0.1 only; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
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

import django  # noqa: E402
import redis  # noqa: E402

django.setup()  # tests/e2e/gate.py reads the demo's logins from a management command module

from bench.http_path import measured  # noqa: E402
from tests.e2e.gate import PUBLIC_PREFIX, GatedSite  # noqa: E402
from tests.e2e.topology import REDIS_DB_URL, require_postgres_and_redis  # noqa: E402

KINDS = ("healthz", "cookie", "bypass", "no-cookie", "nginx-cookie")


def wrk_script(kind: str, site: GatedSite, cookie: str) -> str:
    """wrk's Lua for one kind: the same request over and over, with the headers nginx's auth_request sends."""
    if kind == "healthz":
        return 'wrk.path = "/healthz"\n'
    if kind == "nginx-cookie":
        return f'wrk.path = "/shop/"\nwrk.headers["Cookie"] = "{site.cookie_name}={cookie}"\n'
    uri = f"{PUBLIC_PREFIX}price-list" if kind == "bypass" else "/shop/"
    headers = {"X-Original-URI": uri, "X-Original-Host": site.host, "X-Original-Method": "GET",
               "X-Original-Proto": "http", "Host": site.host}
    if kind == "cookie":
        headers["Cookie"] = f"{site.cookie_name}={cookie}"
    return 'wrk.path = "/gate/auth"\n' + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def drive(port: int, script: str, tmp: Path, args) -> str:
    path = tmp / "gate.lua"
    path.write_text(script)
    command = ["wrk", "--threads", "1", "--connections", str(args.connections), "--duration", f"{args.duration}s",
               "--timeout", "10s", "--latency", "--script", str(path), f"http://127.0.0.1:{port}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 30, check=True).stdout


def run_all(site: GatedSite, cookie: str, tmp: Path, args) -> list[dict]:
    """Every kind in turn, `--repeat` times; one row per run. A warm-up run first (imports, caches, pools)."""
    drive(site.qms.port, wrk_script("cookie", site, cookie), tmp, argparse.Namespace(connections=4, duration=1))
    rows = []
    for repeat in range(args.repeat):
        for kind in KINDS:
            port = site.port if kind == "nginx-cookie" else site.qms.port
            script = wrk_script(kind, site, cookie)
            row = measured(site.qms.process, lambda: drive(port, script, tmp, args))  # noqa: B023 - called at once
            row.update(request=kind, repeat=repeat)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Medians per kind, and each kind's ratio to /healthz of the same runs."""
    summary = {}
    for kind in KINDS:
        runs = [r for r in rows if r["request"] == kind]
        summary[kind] = {field: round(statistics.median(r[field] for r in runs), 2)
                         for field in ("per_s", "p50_ms", "p99_ms", "server_cpu", "per_core_s")}
        summary[kind]["non_2xx"] = sum(r["non_2xx"] for r in runs)
    for kind in KINDS:
        summary[kind]["ratio_per_core"] = round(summary[kind]["per_core_s"] / summary["healthz"]["per_core_s"], 2)
    return summary


def report(summary: dict, args) -> None:
    print(f"\n{args.store} store, {args.connections} keep-alive connections, {args.duration} s per run, "
          f"medians of {args.repeat}:")
    print("| request | requests/s | p50 ms | p99 ms | non-2xx | server CPU | per busy core | ÷ /healthz (per core) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, row in summary.items():
        print(f"| {kind} | {row['per_s']:,.0f} | {row['p50_ms']} | {row['p99_ms']} | {row['non_2xx']} "
              f"| {row['server_cpu']} | {row['per_core_s']:,.0f} | {row['ratio_per_core']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("redis", "memory"), default="redis")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk's keep-alive connections")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gate.json"))
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict = {"cpus": os.cpu_count(), "args": vars(args), "load_average_before": os.getloadavg()}
    env, prefix = {}, f"qms-bench-gate-{uuid.uuid4().hex[:8]}"
    if args.store == "redis":
        require_postgres_and_redis()
        env = {"QMS_REDIS_URL": REDIS_DB_URL, "QMS_KEY_PREFIX": prefix}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        site = GatedSite(tmp, fans=1, **env)
        try:
            cookie, _ = site.admit(site.fans[0], "/shop/")
            results["runs"] = run_all(site, cookie, tmp, args)
        finally:
            site.stop()
            if args.store == "redis":
                client = redis.Redis.from_url(REDIS_DB_URL)
                for key in client.scan_iter(f"{prefix}*", count=1000):
                    client.delete(key)
    results["summary"] = summarise(results["runs"])
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    report(results["summary"], args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out} ({results['wall_seconds']} s)")


if __name__ == "__main__":
    main()
