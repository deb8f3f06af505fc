"""Load harness: QMS under an on-sale storm, next to a bare Channels baseline measured in the same run.

For each repeat it runs the same three phases against QMS's production
topology (2 Daphne, a Celery worker, beat, PostgreSQL, Redis) and against the
bare consumer (bench/bare_server.py: 2 Daphne on the same channels_redis):

1. storm: N authenticated sockets arrive within `--arrival-seconds`;
   connect→`queued` latency, dropped sockets, RSS per socket per Daphne.
2. progress: all N wait for `--progress-seconds`; delivery latency of every
   `progress` broadcast (its `at` → the client), Daphne CPU per broadcast.
3. admission: admission opens at `--rate` per minute; tick→JWT latency per fan
   (the ledger row's `issued_at` → the `admitted` frame at the client).

The clients are `--clients` processes of asyncio `websockets` sockets (the load
client shares the 2 cores with the servers, as it does for the baseline).
Traffic goes to 127.0.0.1 only; every phase is bounded in time.

    .venv/bin/python bench/load.py [--fans 2000] [--arrival-seconds 10] [--rate 3000] [--repeat 1]
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

from bench.fan_client import open_fan_socket  # noqa: E402
from bench.procstat import cpu_seconds, rss_bytes  # noqa: E402
from tests.e2e.servers import PYTHON, Process, base_env, free_port, wait_http  # noqa: E402
from tests.e2e.topology import REDIS_DB_URL, start_topology, stop_topology  # noqa: E402

# The baseline publisher uses QMS's channel layer settings: load them for the topology's Redis.
os.environ["QMS_REDIS_URL"] = REDIS_DB_URL
import django  # noqa: E402

django.setup()

RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "docs" / "perf"


# --- the load client (runs in forked processes) ------------------------------------------------


async def fan_socket(url: str, start_at: float, counters, record: dict) -> None:
    """One fan: connect at its arrival time, then read every frame until the server closes the socket."""
    from websockets.exceptions import ConnectionClosed

    ws = await open_fan_socket(url, start_at, record, open_timeout=120)
    if ws is None:
        return
    progress = record["progress"] = []
    try:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            kind = message["type"]
            if "first" not in record:
                record["first"], record["first_type"] = now, kind
                if kind == "queued":
                    with counters["queued"].get_lock():
                        counters["queued"].value += 1
            if kind == "progress":
                progress.append((message["at"], now))
            elif kind == "admitted":
                record["admitted"] = (message["issued_at"], now)
                with counters["admitted"].get_lock():
                    counters["admitted"].value += 1
    except ConnectionClosed:
        pass
    finally:
        record["close_code"] = ws.close_code
        record["closed"] = time.time()
        await ws.close()


def client_process(fans: list[tuple[int, str, float]], counters, stop, out: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> list[dict]:
        records = [{"fan": index} for index, _url, _at in fans]
        tasks = [asyncio.ensure_future(fan_socket(url, at, counters, record))
                 for (_index, url, at), record in zip(fans, records, strict=True)]
        while not stop.is_set() and not all(task.done() for task in tasks):
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return records

    Path(out).write_text(json.dumps(asyncio.run(main())))


# --- the servers ---------------------------------------------------------------------------------


def server_pid(process: Process) -> int:
    """The Python process behind a Procfile line (`bash -c` execs it, or runs it as its only child)."""
    pid = process.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


class QmsTarget:
    """QMS's production topology; a fresh paused event per run, opened by the operator API."""

    name = "qms"

    def __init__(self, tmp: Path, fans: int):
        self.topology = start_topology(tmp, fans)  # production's settings: a connection pool per process
        self.event_id = 0

    def restart_servers(self) -> None:
        """Fresh Daphne processes per run, so memory per socket starts from the same heap."""
        for index, name in enumerate(("web1", "web2")):
            self.topology.processes[name].stop()
            self.topology.start(name)
            wait_http(f"{self.topology.base(index)}/readyz", timeout=40, process=self.topology.processes[name])

    def pids(self) -> list[int]:
        return [server_pid(self.topology.processes[name]) for name in ("web1", "web2")]

    def new_run(self, rate: int) -> None:
        self.event_id = self.topology.create_event(admit_per_minute=rate)

    def url(self, index: int) -> str:
        return self.topology.ws(index, self.event_id, self.topology.fans[index][1])

    def warm_url(self, index: int) -> str:
        return self.url(index)

    async def broadcast_progress(self, stop: asyncio.Event) -> None:
        """Beat's tick broadcasts every second by itself."""

    async def open_admission(self, fans: int, rate: int) -> None:
        """The operator's PATCH; a server still working off a storm may answer it late, so ask again."""
        for attempt in range(6):
            try:
                return await asyncio.to_thread(self.topology.set_paused, self.event_id, False)
            except (TimeoutError, OSError):
                if attempt == 5:
                    raise

    def stop(self) -> None:
        stop_topology(self.topology)


class BareTarget:
    """Two bare Channels servers; this process plays the tick: progress every second, admissions at the rate."""

    name = "bare"

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = base_env(QMS_REDIS_URL=REDIS_DB_URL, QMS_KEY_PREFIX=f"qms-bench-bare-{os.getpid()}")
        self.ports = [free_port(), free_port()]
        self.processes: list[Process] = []
        self.restart_servers()
        from channels_redis.core import RedisChannelLayer
        from django.conf import settings

        config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"], prefix=f"{self.env['QMS_KEY_PREFIX']}:asgi")
        self.layer = RedisChannelLayer(**config)

    def restart_servers(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes = [Process(f"bare{i}", [PYTHON, "bench/bare_server.py", "--port", str(port)], self.env,
                                  self.tmp) for i, port in enumerate(self.ports)]
        for port, process in zip(self.ports, self.processes, strict=True):
            wait_http(f"http://127.0.0.1:{port}/", timeout=40, process=process)

    def pids(self) -> list[int]:
        return [process.proc.pid for process in self.processes]

    def new_run(self, rate: int) -> None:
        pass

    def url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.ports[index % 2]}/ws/bare/{index}/"

    def warm_url(self, index: int) -> str:
        return self.url(1_000_000 + index)

    async def broadcast_progress(self, stop: asyncio.Event) -> None:
        from bench.bare_server import BROADCAST_GROUP

        while not stop.is_set():
            message = {"type": "progress", "at": round(time.time(), 3)}
            await self.layer.group_send(BROADCAST_GROUP, {"type": "bare.progress", "message": message})
            await asyncio.sleep(1.0)

    async def open_admission(self, fans: int, rate: int) -> None:
        asyncio.ensure_future(self.admit(fans, rate))

    async def admit(self, fans: int, rate: int) -> None:
        """Like a tick: once a second, one `admitted` per fan of the batch, carrying a signed token's size."""
        from bench.bare_server import fan_group

        token = "x" * 520  # the length of an ES256 admission JWT
        per_tick = max(1, round(rate / 60))
        for start in range(0, fans, per_tick):
            began = time.monotonic()
            issued = round(time.time(), 3)
            for index in range(start, min(fans, start + per_tick)):
                message = {"type": "admitted", "token": token, "issued_at": issued}
                await self.layer.group_send(fan_group(index), {"type": "bare.admitted", "message": message})
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


# --- one run --------------------------------------------------------------------------------------


async def warm_up(target, count: int = 20) -> None:
    """Load everything a first socket loads (code paths, pools) before the memory baseline is read."""
    from websockets.asyncio.client import connect

    for index in range(count):
        async with connect(target.warm_url(index), proxy=None, compression=None, open_timeout=30) as ws:
            await ws.recv()


async def wait_for(counter, goal: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while counter.value < goal and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return time.time()


def run_once(target, fans: int, arrival: float, progress_seconds: float, rate: int, clients: int,
             profile_dir: Path | None = None) -> dict:
    target.restart_servers()
    target.new_run(rate)
    asyncio.run(warm_up(target))
    pids = target.pids()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)  # py-spy does not make it, and says so nowhere we read
    profilers = [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "200", "--gil", "--format", "raw",
                                   "--output", str(profile_dir / f"{target.name}-{i}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i, pid in enumerate(pids)] if profile_dir else []
    time.sleep(1.0)
    rss_before = [rss_bytes(pid) for pid in pids]

    ctx = multiprocessing.get_context("fork")
    counters = {"queued": ctx.Value("i", 0), "admitted": ctx.Value("i", 0)}
    stop = ctx.Event()
    t0 = time.time() + 1.5
    plan = [(i, target.url(i), t0 + i * arrival / fans) for i in range(fans)]
    outs = [str(RESULTS / f".client-{target.name}-{k}.json") for k in range(clients)]
    procs = [ctx.Process(target=client_process, args=(plan[k::clients], counters, stop, outs[k]))
             for k in range(clients)]
    for proc in procs:
        proc.start()

    async def control() -> dict:
        marks: dict = {"t0": t0}
        ticking = asyncio.Event()
        ticker = asyncio.ensure_future(target.broadcast_progress(ticking))
        cpu_start = [cpu_seconds(pid) for pid in pids]
        marks["storm_done"] = await wait_for(counters["queued"], fans, arrival + 120)
        marks["cpu_storm"] = sum(cpu_seconds(pid) for pid in pids) - sum(cpu_start)
        await asyncio.sleep(3.0)  # let the last handshakes' garbage go before memory is read
        marks["rss_after"] = [rss_bytes(pid) for pid in pids]
        marks["progress_from"] = time.time()
        cpu_before = [cpu_seconds(pid) for pid in pids]
        client_cpu_before = [cpu_seconds(proc.pid) for proc in procs]
        await asyncio.sleep(progress_seconds)
        marks["cpu_progress"] = sum(cpu_seconds(pid) for pid in pids) - sum(cpu_before)
        marks["client_cpu_progress"] = sum(cpu_seconds(proc.pid) for proc in procs) - sum(client_cpu_before)
        marks["progress_to"] = time.time()
        marks["admission_from"] = time.time()
        await target.open_admission(fans, rate)
        marks["admission_done"] = await wait_for(counters["admitted"], fans, fans / rate * 60 + 90)
        ticking.set()
        await ticker
        return marks

    marks = asyncio.run(control())
    stop.set()
    for proc in procs:
        proc.join(timeout=60)
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its collapsed stacks on SIGINT
        profiler.wait(timeout=30)
    records = [record for out in outs for record in json.loads(Path(out).read_text())]
    for out in outs:
        Path(out).unlink()
    return summarise(target.name, records, marks, rss_before, fans, arrival, rate)


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000, 1)

    return {"n": len(values), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)}


def failure(record: dict) -> str:
    """Why a fan never got `queued`: the client's error, another first frame, or the close without a frame."""
    if record.get("error"):
        return record["error"]
    if record.get("first_type"):
        return f"first frame {record['first_type']}"
    if "open" not in record:
        return "still connecting at the end"
    return f"closed {record.get('close_code')} without a frame" if "closed" in record else "open, no frame"


def summarise(name: str, records: list[dict], marks: dict, rss_before: list[int], fans: int, arrival: float,
              rate: int) -> dict:
    queued = [r for r in records if r.get("first_type") == "queued"]
    connect_to_queued = [r["first"] - r["start"] for r in queued]
    progress = [received - at for r in records for at, received in r.get("progress", ())
                if marks["progress_from"] <= received <= marks["progress_to"]]
    broadcasts = {round(at, 3) for r in records for at, received in r.get("progress", ())
                  if marks["progress_from"] <= received <= marks["progress_to"]}
    admitted = [r["admitted"][1] - r["admitted"][0] for r in records if "admitted" in r]
    rss_per_socket = [(after - before) / (fans / 2)
                      for before, after in zip(rss_before, marks["rss_after"], strict=True)]
    admission_span = max((r["admitted"][1] for r in records if "admitted" in r), default=marks["admission_from"])
    return {
        "target": name, "fans": fans, "arrival_seconds": arrival, "rate_per_minute": rate,
        "storm": {
            "queued": len(queued), "dropped": fans - len(queued),
            "errors": dict(Counter(failure(r) for r in records if r.get("first_type") != "queued")),
            "connect_to_queued": percentiles(connect_to_queued),
            "seconds_to_all_queued": round(marks["storm_done"] - marks["t0"], 2),
            "server_cpu_seconds": round(marks["cpu_storm"], 2),
            "rss_per_socket_kb": [round(value / 1024, 1) for value in rss_per_socket],
            "rss_after_mb": [round(value / 2**20, 1) for value in marks["rss_after"]],
            "timeline": sorted(round(r["open"] - marks["t0"], 3) for r in records if "open" in r),
            "queued_timeline": sorted(round(r["first"] - marks["t0"], 3) for r in queued),
        },
        "progress": {
            "broadcasts": len(broadcasts), "deliveries": len(progress), "delivery": percentiles(progress),
            # Daphne CPU per second of waiting, i.e. per tick (one broadcast each).
            "server_cpu_ms_per_tick": round(marks["cpu_progress"] / (marks["progress_to"] - marks["progress_from"])
                                            * 1000, 1),
            # The load client shares the 2 cores: what it takes is not there for the servers.
            "client_cpu_ms_per_tick": round(marks["client_cpu_progress"]
                                            / (marks["progress_to"] - marks["progress_from"]) * 1000, 1),
        },
        "admission": {
            "admitted": len(admitted), "tick_to_jwt": percentiles(admitted),
            "observed_rate_per_minute": round(len(admitted) / max(1e-9, admission_span - marks["admission_from"])
                                              * 60),
            "close_codes": sorted({r.get("close_code") for r in records if "admitted" in r} - {None}),
        },
        "samples": {"connect_to_queued": connect_to_queued, "progress": progress, "tick_to_jwt": admitted},
    }


# --- report ---------------------------------------------------------------------------------------


def median_of(runs: list[dict], *path: str) -> float:
    values = []
    for run in runs:
        value = run
        for key in path:
            value = value[key]
        values.append(statistics.mean(value) if isinstance(value, list) else value)
    return statistics.median(values)


def report(runs: list[dict]) -> dict:
    """Medians over repeats, per target, and QMS ÷ bare for each."""
    rows = {}
    for name in ("qms", "bare"):
        mine = [run for run in runs if run["target"] == name]
        rows[name] = {
            "dropped": max(run["storm"]["dropped"] for run in mine),
            "connect_to_queued_p50_ms": median_of(mine, "storm", "connect_to_queued", "p50_ms"),
            "connect_to_queued_p99_ms": median_of(mine, "storm", "connect_to_queued", "p99_ms"),
            "rss_per_socket_kb": median_of(mine, "storm", "rss_per_socket_kb"),
            "storm_cpu_ms_per_socket": median_of(mine, "storm", "server_cpu_seconds") / mine[0]["fans"] * 1000,
            "progress_p50_ms": median_of(mine, "progress", "delivery", "p50_ms"),
            "progress_p99_ms": median_of(mine, "progress", "delivery", "p99_ms"),
            "progress_cpu_ms_per_tick": median_of(mine, "progress", "server_cpu_ms_per_tick"),
            "client_cpu_ms_per_tick": median_of(mine, "progress", "client_cpu_ms_per_tick"),
            "tick_to_jwt_p50_ms": median_of(mine, "admission", "tick_to_jwt", "p50_ms"),
            "tick_to_jwt_p99_ms": median_of(mine, "admission", "tick_to_jwt", "p99_ms"),
            "admitted": min(run["admission"]["admitted"] for run in mine),
            "observed_rate_per_minute": median_of(mine, "admission", "observed_rate_per_minute"),
        }
    rows["ratio"] = {key: round(value / rows["bare"][key], 2) if rows["bare"][key] else None
                     for key, value in rows["qms"].items() if key not in {"dropped", "admitted"}}
    return rows


def plot(runs: list[dict], label: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = {run["target"]: run for run in reversed(runs)}  # the first run of each target
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    colours = {"qms": "tab:blue", "bare": "tab:gray"}
    titles = {"connect_to_queued": "1. connect → queued", "progress": "2. progress delivery",
              "tick_to_jwt": "3. tick → JWT on the socket"}
    for ax, sample in zip(axes[0], titles, strict=True):
        for name, run in first.items():
            values = sorted(run["samples"][sample])
            if values:
                ax.plot([v * 1000 for v in values], [i / len(values) for i in range(len(values))],
                        label=name, color=colours[name])
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log)")
        ax.set_ylabel("fraction of fans")
        ax.set_title(titles[sample])
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax = axes[1][0]
    for name, run in first.items():
        timeline = run["storm"]["timeline"]
        ax.plot(timeline, range(1, len(timeline) + 1), label=f"{name}: open", color=colours[name])
        queued = run["storm"].get("queued_timeline", [])
        ax.plot(queued, range(1, len(queued) + 1), label=f"{name}: queued", color=colours[name], linestyle="--")
    ax.set_xlabel("seconds since the storm began")
    ax.set_ylabel("sockets")
    ax.set_title("connections over time")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax = axes[1][1]
    names = list(first)
    ax.bar(names, [statistics.mean(first[name]["storm"]["rss_per_socket_kb"]) for name in names],
           color=[colours[name] for name in names])
    ax.set_ylabel("KiB of Daphne RSS per open socket")
    ax.set_title("memory per socket")
    ax = axes[1][2]
    ax.bar(names, [first[name]["progress"]["server_cpu_ms_per_tick"] for name in names],
           color=[colours[name] for name in names])
    ax.set_ylabel("Daphne CPU ms per second while all wait")
    ax.set_title("server cost of one tick (1 broadcast)")
    fig.suptitle(f"QMS vs bare Channels consumer: {label} (2 Daphne, channels_redis, 2-core machine)")
    fig.tight_layout()
    PLOTS.mkdir(parents=True, exist_ok=True)
    out = PLOTS / f"load-{first['qms']['fans']}.png"
    fig.savefig(out, dpi=80)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=2000)
    parser.add_argument("--arrival-seconds", type=float, default=10.0)
    parser.add_argument("--progress-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=3000, help="admissions per minute")
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=["qms", "bare"], help="measure one target (profiling)")
    parser.add_argument("--py-spy", type=Path, help="record each Daphne with py-spy into this directory")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from the saved results")
    args = parser.parse_args()
    label = f"{args.fans:,} fans in {args.arrival_seconds:g} s, {args.rate:,}/min"
    if args.replot:
        print("plot:", plot(json.loads((RESULTS / f"load-{args.fans}.json").read_text()), label))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = []
        try:
            if args.only != "bare":
                targets.append(QmsTarget(Path(tmp), args.fans))
            if args.only != "qms":
                targets.append(BareTarget(Path(tmp)))
            for _ in range(args.repeat):
                for target in targets:  # interleaved, so drift on the shared machine hits both alike
                    run = run_once(target, args.fans, args.arrival_seconds, args.progress_seconds, args.rate,
                                   args.clients, args.py_spy)
                    runs.append(run)
                    storm = {k: v for k, v in run["storm"].items() if not k.endswith("timeline")}
                    print(json.dumps({k: v for k, v in run.items() if k != "samples"} | {"storm": storm}), flush=True)
        finally:
            for target in targets:
                target.stop()
    out = RESULTS / f"load-{args.fans}.json"
    out.write_text(json.dumps(runs))
    if not args.only:
        summary = report(runs)
        print(json.dumps(summary, indent=2))
        (RESULTS / f"load-{args.fans}-summary.json").write_text(json.dumps(summary, indent=2))
        print("plot:", plot(runs, label))


if __name__ == "__main__":
    main()
