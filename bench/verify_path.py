"""Benchmark: the verify path (performance scenario 5) and admission-token signing (scenario 3).

1. Offline, one process on one core: the claims of real admissions are signed
   with `queues.tokens.sign` (ES256) and verified with `queues.verify.AdmissionVerifier`
   as a reservation service runs it (JWKS fetched once from the server, then cached).
   Baselines in the same run: PyJWT's HS256 decode of the same claims (the cheapest JWT
   verify) and PyJWT's bare ES256 decode (the signature check without the helper).
2. Endpoint: one web process of the production topology (the Procfile's `web1`:
   Daphne, `--no-tick`, on PostgreSQL and Redis) with admissions made by the real
   service (`admission.join` then the operator's `admit` operation); a keep-alive asyncio HTTP
   client drives `POST /api/admissions/verify/` (`redeem: false`) at a fixed
   concurrency for a fixed time. Baseline in the same run, same process, same client:
   `GET /healthz`. Then tokens are redeemed (`redeem: true`), each at most once, for the same time.

Traffic goes to 127.0.0.1 only and every phase is bounded in time or count.

    .venv/bin/python bench/verify_path.py [--admissions 2000] [--repeat 3] [--duration 6] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

import jwt  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.procstat import cpu_seconds  # noqa: E402
from queues import tokens  # noqa: E402
from queues.verify import REQUIRED_CLAIMS, VERIFY_PATH, AdmissionVerifier  # noqa: E402
from tests.e2e.servers import base_env, free_port, manage, wait_http  # noqa: E402
from tests.e2e.topology import (  # noqa: E402
    ADMIN_DSN,
    REDIS_DB_URL,
    Topology,
    require_postgres_and_redis,
    stop_topology,
)

HOST = "127.0.0.1"

# Run by `manage.py shell` against the server's database and Redis: fans join and are admitted by the
# same service functions the API and the tick call; the tokens come from the ledger.
ADMIT = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from events.models import Event
from queues import admission
from queues.operations import perform
from queues.models import Admission
User = get_user_model()
User.objects.bulk_create([User(username=f"verify{i:06d}") for i in range(COUNT)])
event = Event.objects.create(name="Verify bench", paused=True, max_active=COUNT, token_ttl_seconds=3600,
                             sale_starts_at=timezone.now() - timedelta(minutes=1),
                             reservation_url="https://tickets.example/reserve")
for user in User.objects.filter(username__startswith="verify"):
    admission.join(event, user)
perform("admit", event, count=COUNT)
print(json.dumps({"event": event.id, "tokens": list(Admission.objects.filter(event=event)
                                                     .values_list("token", flat=True))}))
"""


# --- the server ---------------------------------------------------------------------


def start_web(tmp: Path, conn_max_age: int) -> tuple[Topology, str]:
    """A fresh database and the Procfile's `web1` on it, with production settings; returns it and its key.

    `conn_max_age` is DATABASE_CONN_MAX_AGE. Django runs each ASGI request's sync code in a new thread, so a
    connection kept past its request is never reused: above 0, one piles up per request.
    """
    require_postgres_and_redis()
    name = f"qms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    key = tokens.generate_private_pem()
    (tmp / "signing-key.pem").write_text(key)
    (tmp / "prometheus").mkdir()
    port = free_port()
    database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    env = base_env(DATABASE_URL=database_url, QMS_REDIS_URL=REDIS_DB_URL, QMS_KEY_PREFIX=f"qms-bench-{name}",
                   QMS_SIGNING_KEY_FILE=str(tmp / "signing-key.pem"), QMS_WEB1_PORT=str(port),
                   PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"), DATABASE_CONN_MAX_AGE=str(conn_max_age))
    web = Topology(env, [port], tmp, database_url, "", [], name=name)
    try:
        manage("migrate", "--noinput", "-v0", env=env)
        web.start("web1")
        wait_http(f"{web.base()}/readyz", timeout=40, process=web.processes["web1"])
    except BaseException:  # SIGTERM (SystemExit) too: never leave a database behind
        stop_topology(web)
        raise
    return web, key


def admit(web: Topology, count: int) -> tuple[int, list[str]]:
    """`count` real admissions on the server: (event id, their tokens)."""
    out = manage("shell", "-c", ADMIT.replace("COUNT", str(count)), env=web.env)
    made = json.loads(out.splitlines()[-1])
    assert len(made["tokens"]) == count, f"admitted {len(made['tokens'])} of {count}"
    return made["event"], made["tokens"]


# --- offline: sign and verify in one process ----------------------------------------------


CHUNK = 250  # tokens per slice: the operations take turns, so a burst of noise hits them all alike


def offline_run(claims: list[dict], verifier: AdmissionVerifier, event_id: int) -> dict:
    """One run: ES256 sign, verify with the helper, bare PyJWT ES256 and HS256 decodes of the same claims.

    Each operation is timed over all claims, in slices of CHUNK taken in turns; returns calls per second.
    """
    secret = secrets.token_bytes(32)
    hs256 = [jwt.encode(c, secret, algorithm="HS256") for c in claims]
    public = verifier.keys.key(tokens.keyring().signing_kid)
    checks = {"audience": settings.QMS_TOKEN_AUDIENCE, "issuer": settings.QMS_TOKEN_ISSUER,
              "options": {"require": REQUIRED_CLAIMS}}
    signed: list[str] = []
    operations = {
        "es256_sign_per_s": lambda i: signed.append(tokens.sign(claims[i])),
        "verifier_per_s": lambda i: verifier.verify(signed[i], event_id=event_id),
        "pyjwt_es256_decode_per_s": lambda i: jwt.decode(signed[i], public, algorithms=["ES256"], **checks),
        "pyjwt_hs256_decode_per_s": lambda i: jwt.decode(hs256[i], secret, algorithms=["HS256"], **checks),
    }
    seconds = dict.fromkeys(operations, 0.0)
    for first in range(0, len(claims), CHUNK):
        for name, operation in operations.items():  # signing first: the others use its tokens
            started = time.perf_counter()
            for i in range(first, min(first + CHUNK, len(claims))):
                operation(i)
            seconds[name] += time.perf_counter() - started
    return {name: round(len(claims) / spent) for name, spent in seconds.items()}


def offline(web: Topology, key: str, server_tokens: list[str], event_id: int, repeat: int) -> dict:
    """Medians over `repeat` runs; the signing key is the server's, so its JWKS verifies what we sign."""
    settings.QMS_SIGNING_KEY = key
    tokens.reset_keyring()
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in server_tokens]
    verifier = AdmissionVerifier(f"{web.base()}/.well-known/jwks.json")
    verifier.verify(server_tokens[0], event_id=event_id)  # the one JWKS fetch, as on a reservation service
    runs = [offline_run(claims, verifier, event_id) for _ in range(repeat)]
    assert verifier.keys.fetches == 1, f"the JWKS was fetched {verifier.keys.fetches} times"
    return {"tokens_per_run": len(claims), "jwks_fetches": verifier.keys.fetches, "runs": runs,
            "median": {name: round(statistics.median(r[name] for r in runs)) for name in runs[0]}}


# --- endpoint: keep-alive HTTP client -----------------------------------------------------


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\n\r\n".encode()


def post_json(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 response; the body is read and dropped."""
    status = int((await reader.readline()).split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep_alive = value != "close"
    if not chunked:
        await reader.readexactly(length)
        return status, keep_alive
    while size := int((await reader.readline()).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status, keep_alive


async def drive(port: int, requests, concurrency: int, *, duration: float | None = None) -> dict:
    """Send requests from `concurrency` keep-alive connections, each waiting for its answer before the next.

    Stops after `duration` seconds, or when `requests` (an iterator of raw requests) runs out.
    """
    latencies: list[float] = []
    statuses: Counter = Counter()
    reconnects = 0
    deadline = time.perf_counter() + duration if duration else float("inf")

    async def connection() -> None:
        nonlocal reconnects
        reader, writer = await asyncio.open_connection(HOST, port)
        for request in requests:
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            writer.write(request)
            status, keep_alive = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if not keep_alive:
                writer.close()
                reconnects += 1
                reader, writer = await asyncio.open_connection(HOST, port)
        writer.close()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies), "seconds": round(elapsed, 2), "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "non_200": sum(n for code, n in statuses.items() if code != 200), "statuses": dict(statuses),
        "reconnects": reconnects, "client_cpu": round((time.process_time() - cpu) / elapsed, 2),
    }


def measured(web: Topology, run) -> dict:
    """`run()`'s result with the web process's CPU use (cores busy) over it."""
    pid = web.processes["web1"].proc.pid
    cpu, started = cpu_seconds(pid), time.perf_counter()
    result = run()
    result["server_cpu"] = round((cpu_seconds(pid) - cpu) / (time.perf_counter() - started), 2)
    result["per_server_core_s"] = round(result["per_s"] / max(result["server_cpu"], 0.01), 1)
    return result


def endpoint(web: Topology, server_tokens: list[str], event_id: int, args) -> dict:
    """Interleaved timed runs of /healthz and verify, then redeems (each token at most once) for as long."""
    port = web.ports[0]
    health = itertools.repeat(get("/healthz"))
    verify = itertools.cycle([post_json(VERIFY_PATH, {"token": t, "redeem": False, "event": event_id})
                              for t in server_tokens])

    def load(requests, duration: float | None = None):
        return lambda: asyncio.run(drive(port, requests, args.concurrency, duration=duration))

    load(health, 1.0)()  # warm-up: imports, thread pool, database connection
    load(verify, 1.0)()
    runs = [{"healthz": measured(web, load(health, args.duration)),
             "verify": measured(web, load(verify, args.duration))} for _ in range(args.repeat)]
    redeem = measured(web, load(iter([post_json(VERIFY_PATH, {"token": t, "redeem": True, "event": event_id})
                                      for t in server_tokens]), args.duration))  # each token once
    median = {kind: {field: round(statistics.median(run[kind][field] for run in runs), 2)
                     for field in ("per_s", "p50_ms", "p99_ms", "server_cpu", "per_server_core_s", "client_cpu")}
              for kind in ("healthz", "verify")}
    for kind in median:
        median[kind]["non_200"] = sum(run[kind]["non_200"] for run in runs)
    return {"concurrency": args.concurrency, "duration_s": args.duration, "runs": runs, "median": median,
            "redeem": redeem}


def failures(endpoint_results: dict) -> int:
    """Non-200 answers of the whole endpoint phase: any at all makes the rates meaningless."""
    median = endpoint_results["median"]
    return median["verify"]["non_200"] + median["healthz"]["non_200"] + endpoint_results["redeem"]["non_200"]


# --- report -------------------------------------------------------------------------------


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    off, end = results["offline"]["median"], results["endpoint"]["median"]
    panels = [
        ("Offline, one core (ops/s)", [
            ("verify\n(AdmissionVerifier)", off["verifier_per_s"], "tab:blue"),
            ("PyJWT ES256\ndecode", off["pyjwt_es256_decode_per_s"], "tab:cyan"),
            ("PyJWT HS256\ndecode (baseline)", off["pyjwt_hs256_decode_per_s"], "tab:gray"),
            ("ES256 sign\n(tokens.sign)", off["es256_sign_per_s"], "tab:orange"),
        ]),
        (f"Endpoint, one Daphne, {results['endpoint']['concurrency']} connections (requests/s)", [
            ("POST verify\n(redeem: false)", end["verify"]["per_s"], "tab:blue"),
            ("POST verify\n(redeem: true)", results["endpoint"]["redeem"]["per_s"], "tab:purple"),
            ("GET /healthz\n(baseline)", end["healthz"]["per_s"], "tab:gray"),
        ]),
    ]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [4, 3]})
    for ax, (title, bars) in zip(axes, panels, strict=True):
        labels, values, colours = zip(*bars, strict=True)
        drawn = ax.bar(labels, values, color=colours)
        ax.bar_label(drawn, labels=[f"{v:,.0f}" for v in values], padding=2, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, max(values) * 1.15)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(f"Verify path and token signing (medians of {results['repeat']} runs, 2-core machine)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def report(results: dict) -> None:
    off, end, redeem = results["offline"]["median"], results["endpoint"]["median"], results["endpoint"]["redeem"]
    hs = off["pyjwt_hs256_decode_per_s"]
    print(f"\nOffline, one process ({results['offline']['tokens_per_run']} tokens per run, "
          f"JWKS fetched {results['offline']['jwks_fetches']}x):")
    print("| operation | per second | ratio to HS256 decode |\n|---|---:|---:|")
    for name in ("verifier_per_s", "pyjwt_es256_decode_per_s", "pyjwt_hs256_decode_per_s", "es256_sign_per_s"):
        print(f"| {name} | {off[name]:,} | {off[name] / hs:.2f} |")
    print(f"\nEndpoint ({results['endpoint']['concurrency']} keep-alive connections, "
          f"{results['endpoint']['duration_s']} s per run):")
    print("| request | requests/s | p50 ms | p99 ms | non-200 | server CPU | per server core | client CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in (("verify", end["verify"]), ("healthz", end["healthz"]), ("redeem", redeem)):
        print(f"| {name} | {row['per_s']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['non_200']} "
              f"| {row['server_cpu']} | {row['per_server_core_s']:,.0f} | {row['client_cpu']} |")
    print(f"verify / healthz: {end['verify']['per_s'] / end['healthz']['per_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admissions", type=int, default=2000, help="admissions made on the server (tokens)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; medians are reported")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per timed endpoint run")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections of the client")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="DATABASE_CONN_MAX_AGE of the server (0, as under ASGI Django advises; 60 leaks)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "verify_path.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "perf" / "verify_path.png"))
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # still drop the database and stop the server
    started = time.perf_counter()
    results: dict = {"cpus": os.cpu_count(), "repeat": args.repeat, "conn_max_age": args.conn_max_age,
                     "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        web, key = start_web(Path(tmp), args.conn_max_age)
        try:
            event_id, server_tokens = admit(web, args.admissions)
            results["offline"] = offline(web, key, server_tokens, event_id, args.repeat)
            results["endpoint"] = endpoint(web, server_tokens, event_id, args)
            if failures(results["endpoint"]):
                print(f"non-200 answers; the server's log ends:\n{web.processes['web1'].log()[-4000:]}",
                      file=sys.stderr)
        finally:
            stop_topology(web)
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=2))
    report(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    plot(results, Path(args.plot))
    print(f"\nwrote {args.out} and {args.plot} ({results['wall_seconds']} s)")


if __name__ == "__main__":
    main()
