"""Benchmark: what logging in costs per core, against what arriving with a token costs.

1. Server: one Daphne process serving QMS (`POST /api/auth/token/`, SimpleJWT's login, Django's default
   PBKDF2 hasher) and, interleaved in the same run (A B A B), one Daphne process serving a Django JSON view
   with no middleware (bench/http_baseline.py). wrk drives each for `--duration` seconds at `--connections`
   keep-alive connections; the server's own CPU seconds (from /proc) give CPU per request and so requests per
   second per busy core.
2. In process, one core, CPU time: a PBKDF2 password check (the login's cost), and the checks an arrival
   with a token makes instead: SimpleJWT's access token (HS256), an OIDC provider's token (RS256 and ES256,
   queues.oidc with its JWKS cached), each with no password hashed.

Traffic goes to 127.0.0.1 only; every phase is bounded in time.

    .venv/bin/python bench/login.py [--repeat 3] [--duration 5] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

from bench.procstat import cpu_seconds  # noqa: E402

PASSWORD = "a long enough bench password"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, deadline: float) -> None:
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on {port} did not start")


def start(settings_module: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                "qms_project.asgi:application"], cwd=ROOT,
                               env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, time.monotonic() + 60)
    return process, port


def wrk(port: int, path: str, script: Path | None, args) -> int:
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                            timeout=args.duration + 30).stdout
    total = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{errors.group(1)} refused requests:\n{output}")
    return total


def measure(process: subprocess.Popen, port: int, path: str, script: Path | None, args) -> dict:
    before = cpu_seconds(process.pid)
    requests = wrk(port, path, script, args)
    cpu = cpu_seconds(process.pid) - before
    return {"requests": requests, "per_second": requests / args.duration, "cpu_ms": 1000 * cpu / requests,
            "per_core_second": requests / cpu}


def server_phase(args, tmp: Path) -> dict:
    import psycopg

    name = f"bench_login_{secrets.token_hex(4)}"
    admin_url = os.environ.get("BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": admin_url.rsplit("/", 1)[0] + "/" + name, "DATABASE_POOL": "0",
           "QMS_LOG_LEVEL": "WARNING", "QMS_EMBEDDED_TICK": "0"}
    processes = []
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "shell", "-c",
                        "from django.contrib.auth import get_user_model as m; "
                        f"m().objects.create_user('bench', password={PASSWORD!r})"], cwd=ROOT, env=env, check=True)
        script = tmp / "login.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(json.dumps({'username': 'bench', 'password': PASSWORD}))}\n")
        qms, qms_port = start("qms_project.settings", env)
        baseline, baseline_port = start("bench.http_baseline", env)
        processes += [qms, baseline]
        rows = {"login": [], "baseline": []}
        for _ in range(args.repeat):  # A B A B: the shared machine's load falls on both alike
            rows["login"].append(measure(qms, qms_port, "/api/auth/token/", script, args))
            rows["baseline"].append(measure(baseline, baseline_port, "/baseline", None, args))
        return rows
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_per_call(function, seconds: float = 2.0) -> float:
    """CPU milliseconds per call, over at least `seconds` of CPU."""
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        function()
        calls += 1
    return 1000 * (time.process_time() - start) / calls


def in_process_phase() -> dict:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import django
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    django.setup()
    from django.contrib.auth.hashers import check_password, make_password
    from django.contrib.auth.models import User
    from rest_framework_simplejwt.tokens import AccessToken

    from queues.oidc import OidcProvider

    encoded = make_password(PASSWORD)  # Django's default hasher: PBKDF2-SHA256
    keys = {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1())}
    jwks = {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa"].public_key())), "kid": "rsa"},
                     {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys["ec"].public_key())), "kid": "ec"}]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps(jwks).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider = OidcProvider("https://idp.bench/", "qms", f"http://127.0.0.1:{server.server_address[1]}/jwks.json")
    now = int(time.time())
    claims = {"iss": "https://idp.bench/", "aud": "qms", "sub": "fan", "exp": now + 3600}
    rs256 = jwt.encode(claims, keys["rsa"], algorithm="RS256", headers={"kid": "rsa"})
    es256 = jwt.encode(claims, keys["ec"], algorithm="ES256", headers={"kid": "ec"})
    access = str(AccessToken.for_user(User(id=1, username="bench")))
    provider.claims(rs256), provider.claims(es256)  # the JWKS fetched once, as a running server holds it
    try:
        return {
            "pbkdf2_check_password": cpu_per_call(lambda: check_password(PASSWORD, encoded), 4.0),
            "simplejwt_access_token": cpu_per_call(lambda: AccessToken(access)),
            "oidc_rs256": cpu_per_call(lambda: provider.claims(rs256, fetch=False)),
            "oidc_es256": cpu_per_call(lambda: provider.claims(es256, fetch=False)),
        }
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "login.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = server_phase(args, Path(tmp))
    checks = in_process_phase()
    summary = {name: {key: statistics.median(row[key] for row in runs) for key in runs[0]}
               for name, runs in rows.items()}
    result = {"args": vars(args), "runs": rows, "median": summary, "in_process_cpu_ms": checks}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    login, baseline = summary["login"], summary["baseline"]
    print(f"login    (POST /api/auth/token/): {login['per_second']:7.1f}/s, {login['cpu_ms']:7.2f} ms CPU each, "
          f"{login['per_core_second']:7.1f} per busy core-second")
    print(f"baseline (no-middleware view)   : {baseline['per_second']:7.1f}/s, {baseline['cpu_ms']:7.2f} ms CPU "
          f"each, {baseline['per_core_second']:7.1f} per busy core-second")
    print(f"ratio login / baseline (per core): {login['per_core_second'] / baseline['per_core_second']:.4f}")
    for name, ms in checks.items():
        print(f"{name:24s}: {ms:8.3f} ms CPU  ({1000 / ms:9.0f} per core-second)")


if __name__ == "__main__":
    main()
