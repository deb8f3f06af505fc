"""Storm on the embedded default (`make run`) next to a bare Channels consumer served by the same Daphne.

Per repeat, interleaved (QMS, bare, QMS, bare, ...) so drift on a shared machine hits both alike:

- **QMS:** `manage.py serve` as `make run` starts it (SQLite in a temp dir, the in-memory store and channel
  layer, the embedded tick), a fresh process and a fresh paused event per run; fans authenticate with SimpleJWT
  access tokens minted once at seeding (`?token=`: no password hashing during the storm).
- **Bare:** `bench/bare_server.py`'s consumer (accept, two `group_add`, say `queued`) served by the same
  `daphne_server` in a process of this script, on Channels' own `InMemoryChannelLayer`: what a bare Channels
  app gets (`--bare-layer qms` serves it on QMS's layer instead).

`--clients` forked processes of asyncio `websockets` clients open `--rate` sockets per second for `--seconds`;
per run: connect → first frame (`queued`) p50/p99, dropped fans, Daphne RSS per socket (VmRSS after a
20-socket warm-up and 3 s after the storm, ÷ sockets open), Daphne CPU per join. One JSON line per run, the
medians and QMS ÷ bare, raw samples in bench/results/, the plot in docs/perf/embedded-storm.png.

    .venv/bin/python bench/embedded_storm.py [--rate 400] [--seconds 5] [--repeat 2] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fan_client import open_fan_socket  # noqa: E402
from bench.procstat import cpu_seconds, rss_bytes  # noqa: E402
from tests.e2e.servers import PYTHON, Process, base_env, free_port, http_json, manage, wait_http  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "docs" / "perf"
WARM_UP = 20

SEED = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
User = get_user_model()
staff = User.objects.create_user("operator", is_staff=True)
User.objects.bulk_create([User(username=f"fan{i:05d}") for i in range(FAN_COUNT)])
fans = User.objects.filter(username__startswith="fan").order_by("username")
print(json.dumps({"staff": str(AccessToken.for_user(staff)), "fans": [str(AccessToken.for_user(u)) for u in fans]}))
"""


# --- the load client (forked processes) ------------------------------------------------------------


async def fan_socket(url: str, start_at: float, queued, record: dict, stop: asyncio.Event) -> None:
    """One fan: connect at its arrival time, note the first frame, hold the socket open until told."""

    ws = await open_fan_socket(url, start_at, record, open_timeout=60)
    if ws is None:
        return
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        record["first"], record["first_type"] = time.time(), first["type"]
        if first["type"] == "queued":
            with queued.get_lock():
                queued.value += 1
        await stop.wait()
    except Exception as exc:  # closed or silent: dropped
        record["error"] = type(exc).__name__
    finally:
        await ws.close()


def client_process(plan: list[tuple[str, float]], queued, stop, out: str) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

    async def main() -> list[dict]:
        records = [{} for _ in plan]
        local_stop = asyncio.Event()
        tasks = [asyncio.ensure_future(fan_socket(url, at, queued, record, local_stop))
                 for (url, at), record in zip(plan, records, strict=True)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        local_stop.set()
        await asyncio.wait(tasks, timeout=30)
        return records

    Path(out).write_text(json.dumps(asyncio.run(main())))


# --- the servers -------------------------------------------------------------------------------------


class QmsEmbedded:
    """`manage.py serve` on its own SQLite file, seeded once; a fresh process and paused event per run."""

    name = "qms"

    def __init__(self, tmp: Path, fans: int):
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = base_env(DATABASE_URL=f"sqlite:///{tmp / 'qms.sqlite3'}", PORT=str(self.port))
        manage("migrate", "--noinput", "-v0", env=self.env)
        seeded = json.loads(manage("shell", "-c", SEED.replace("FAN_COUNT", str(fans + WARM_UP)),
                                   env=self.env, timeout=600).splitlines()[-1])
        self.staff_token, self.tokens = seeded["staff"], seeded["fans"]
        self.process: Process | None = None
        self.event_id = 0

    def start(self) -> None:
        self.process = Process("serve", [PYTHON, "manage.py", "serve"], self.env, self.tmp)
        wait_http(f"{self.base}/readyz", timeout=60, process=self.process)
        body = {"name": f"Storm {time.monotonic_ns()}", "reservation_url": "https://tickets.example/reserve",
                "sale_starts_at": datetime.now(UTC).isoformat(), "paused": True, "max_active": 100000}
        status, event = http_json("POST", f"{self.base}/api/events/", body, self.staff_token)
        assert status == 201, event
        self.event_id = event["id"]

    def url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/events/{self.event_id}/queue/?token={self.tokens[index]}"

    def warm_url(self, index: int) -> str:
        return self.url(len(self.tokens) - 1 - index)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class BareEmbedded:
    """The bare consumer in one Daphne with an in-memory channel layer (this script, `--serve-bare`)."""

    name = "bare"

    def __init__(self, tmp: Path, layer: str):
        self.tmp, self.layer = tmp, layer
        self.port = free_port()
        self.process: Process | None = None

    def start(self) -> None:
        self.process = Process("bare", [PYTHON, "bench/embedded_storm.py", "--serve-bare", str(self.port),
                                        "--bare-layer", self.layer], base_env(), self.tmp)
        wait_http(f"http://127.0.0.1:{self.port}/", timeout=60, process=self.process)

    def url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/bare/{index}/"

    def warm_url(self, index: int) -> str:
        return self.url(1_000_000 + index)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def serve_bare(port: int, layer: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")
    from django.conf import settings

    from bench.bare_server import application  # sets Django up
    from queues.management.commands.serve import daphne_server

    if layer == "channels":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert not settings.QMS_REDIS_URL, "the embedded baseline runs without Redis"
    daphne_server(application, "127.0.0.1", port, 4096, lambda: print("ready", flush=True), 0).run()


# --- one run ---------------------------------------------------------------------------------------------


async def warm_up(target) -> None:
    """Load what a first socket loads (code paths, caches) before the memory baseline is read."""
    from websockets.asyncio.client import connect

    for index in range(WARM_UP):
        async with connect(target.warm_url(index), proxy=None, compression=None, open_timeout=30) as ws:
            await asyncio.wait_for(ws.recv(), 30)


def run_once(target, rate: int, seconds: float, clients: int, profile_dir: Path | None) -> dict:
    fans = int(rate * seconds)
    target.start()
    try:
        asyncio.run(warm_up(target))
        pid = target.process.proc.pid
        profiler = None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)
            profiler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                                         "--rate", "200", "--gil", "--format", "raw", "--output",
                                         str(profile_dir / f"{target.name}-{int(time.time())}.txt")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        rss_before = rss_bytes(pid)
        ctx = multiprocessing.get_context("fork")
        queued, stop = ctx.Value("i", 0), ctx.Event()
        t0 = time.time() + 1.0
        plan = [(target.url(i), t0 + i / rate) for i in range(fans)]
        outs = [str(RESULTS / f".storm-{target.name}-{k}.json") for k in range(clients)]
        procs = [ctx.Process(target=client_process, args=(plan[k::clients], queued, stop, outs[k]))
                 for k in range(clients)]
        for proc in procs:
            proc.start()
        cpu_start = cpu_seconds(pid)
        deadline = t0 + seconds + 90
        while queued.value < fans and time.time() < deadline and any(p.is_alive() for p in procs):
            time.sleep(0.05)
        storm_done = time.time()
        cpu_storm = cpu_seconds(pid) - cpu_start
        time.sleep(3.0)  # the last handshakes' garbage goes before memory is read
        rss_after = rss_bytes(pid)
        stop.set()
        for proc in procs:
            proc.join(timeout=60)
        if profiler:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its stacks on SIGINT
            profiler.wait(timeout=30)
    finally:
        target.stop()
    records = [record for out in outs for record in json.loads(Path(out).read_text())]
    for out in outs:
        Path(out).unlink()
    latencies = sorted(r["first"] - r["start"] for r in records if r.get("first_type") == "queued")
    dropped = fans - len(latencies)
    still_open = sum(1 for r in records if "open" in r and "error" not in r)

    def at(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))] * 1000, 1) \
            if latencies else None

    return {"target": target.name, "rate": rate, "seconds": seconds, "fans": fans, "queued": len(latencies),
            "dropped": dropped, "errors": sorted({r.get("error") or r.get("first_type") for r in records
                                                   if r.get("first_type") != "queued"} - {None}),
            "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0),
            "storm_s": round(storm_done - t0, 2),
            "cpu_per_join_ms": round(cpu_storm / max(1, len(latencies)) * 1000, 2),
            "rss_per_socket_kib": round((rss_after - rss_before) / max(1, still_open) / 1024, 1),
            "latencies": [round(x, 4) for x in latencies]}


def median(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return round(statistics.median(values), 2) if values else None


def report(runs: list[dict]) -> dict:
    keys = ("p50_ms", "p99_ms", "dropped", "cpu_per_join_ms", "rss_per_socket_kib")
    summary = {name: {key: median([r for r in runs if r["target"] == name], key) for key in keys}
               for name in ("qms", "bare")}
    summary["qms/bare"] = {key: round(summary["qms"][key] / summary["bare"][key], 2)
                           for key in keys if summary["qms"][key] and summary["bare"][key]}
    return summary


def plot(runs: list[dict], summary: dict, label: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        xs = run["latencies"]
        style = "-" if run["target"] == "qms" else "--"
        cdf.plot([x * 1000 for x in xs], [i / max(1, len(xs)) for i in range(len(xs))], style,
                 color="tab:blue" if run["target"] == "qms" else "tab:gray", label=run["target"])
    handles, names = cdf.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    cdf.legend(unique.values(), unique.keys())
    cdf.set_xscale("log")
    cdf.set_xlabel("connect → queued (ms, log)")
    cdf.set_ylabel("fraction of fans")
    cdf.set_title(f"{label}: latency CDF, every run")
    metrics = ("p99_ms", "cpu_per_join_ms", "rss_per_socket_kib")
    ratios = [summary["qms/bare"].get(m, 0) for m in metrics]
    bars.bar(["p99 latency", "CPU per join", "RSS per socket"], ratios, color="tab:blue")
    bars.axhline(1.0, color="gray", linestyle="--")
    bars.set_ylabel("QMS ÷ bare (medians)")
    for i, value in enumerate(ratios):
        bars.text(i, value, f"{value:.2f}x", ha="center", va="bottom")
    bars.set_title("QMS ÷ bare Channels")
    fig.tight_layout()
    out = PLOTS / "embedded-storm.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=400, help="new sockets per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--only", choices=("qms", "bare"))
    parser.add_argument("--bare-layer", choices=("channels", "qms"), default="channels",
                        help="the bare consumer's in-memory layer: Channels' own (default) or QMS's")
    parser.add_argument("--py-spy", type=Path, help="record each server with py-spy --gil into this directory")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.bare_layer)

    RESULTS.mkdir(exist_ok=True)
    fans = int(args.rate * args.seconds)
    runs = []
    with tempfile.TemporaryDirectory(prefix="qms-storm-") as tmp:
        targets = []
        if args.only != "bare":
            targets.append(QmsEmbedded(Path(tmp), fans))
        if args.only != "qms":
            targets.append(BareEmbedded(Path(tmp), args.bare_layer))
        for _ in range(args.repeat):
            for target in targets:
                run = run_once(target, args.rate, args.seconds, args.clients, args.py_spy)
                runs.append(run)
                print(json.dumps({k: v for k, v in run.items() if k != "latencies"}), flush=True)
    label = f"{fans} sockets at {args.rate}/s"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"embedded-storm-{stamp}.json").write_text(json.dumps(runs))
    if args.only:
        return
    summary = report(runs)
    print(json.dumps(summary), flush=True)
    print(f"plot: {plot(runs, summary, label)}")


if __name__ == "__main__":
    main()
