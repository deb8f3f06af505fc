"""Proof-of-work solve time in Chromium: the waiting room's own solver (WebCrypto SHA-256, batched) per difficulty.

Starts a real server (embedded default), opens a waiting room in Debian's
Chromium, and times `window.qmsSolveChallenge` (static/qms/waiting-room.js) on
fresh random challenges, in the page (performance.now()). Each solve checks
2**difficulty hashes on average, so single runs scatter widely: the median,
quartiles and hashes per second are what to read.

    .venv/bin/python bench/pow_solve.py [--difficulties 12 16 20] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from playwright.sync_api import sync_playwright  # noqa: E402

from queues.challenge import solves  # noqa: E402
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, FAN, QMSServer, log_in  # noqa: E402

TIME_SOLVE = """async ([challenge, difficulty]) => {
  const started = performance.now();
  const solution = await window.qmsSolveChallenge(challenge, difficulty);
  return [solution, performance.now() - started];
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulties", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        server = QMSServer(Path(workdir))
        try:
            event = server.create_event(name="Solver bench", paused=True, reservation_url="https://tickets.example/r")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                log_in(page, server.base, FAN, f"/events/{event['id']}/waiting-room/")
                page.wait_for_function("typeof window.qmsSolveChallenge === 'function'")
                print(f"Chromium {browser.version}, {os.cpu_count()} CPUs, {args.runs} runs per difficulty")
                print("| difficulty (bits) | median | p25 | p75 | max | hashes/s (mean) |")
                print("| ---: | ---: | ---: | ---: | ---: | ---: |")
                for difficulty in args.difficulties:
                    times, hashes = [], 0
                    for _ in range(args.runs):
                        challenge = f"bench.{secrets.token_urlsafe(16)}"
                        solution, ms = page.evaluate(TIME_SOLVE, [challenge, difficulty])
                        assert solves(challenge, solution, difficulty), (challenge, solution)  # checked in Python
                        times.append(ms)
                        hashes += int(solution) + 1
                    q1, _, q3 = statistics.quantiles(times, n=4)
                    rate = hashes / (sum(times) / 1000)
                    print(f"| {difficulty} | {statistics.median(times):,.0f} ms | {q1:,.0f} ms | {q3:,.0f} ms "
                          f"| {max(times):,.0f} ms | {rate:,.0f} |", flush=True)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
