"""The load clients' side of one fan's socket (bench/load.py, bench/embedded_storm.py): arrive on time, open."""

from __future__ import annotations

import asyncio
import time


async def open_fan_socket(url: str, start_at: float, record: dict, open_timeout: float):
    """Wait for the fan's arrival time, then open the socket. Notes `start` and `open` (epoch seconds) in
    `record`, or the `error` of a dropped fan (refused, reset, handshake timeout) and returns None."""
    from websockets.asyncio.client import connect

    await asyncio.sleep(max(0.0, start_at - time.time()))
    record["start"] = time.time()
    try:
        ws = await connect(url, proxy=None, compression=None, open_timeout=open_timeout, max_queue=None,
                           ping_interval=None, close_timeout=2)
    except Exception as exc:  # a dropped fan: the harness reports why
        record["error"] = type(exc).__name__
        return None
    record["open"] = time.time()
    return ws
