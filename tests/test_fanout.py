"""The per-process fan-out of event broadcasts (queues/realtime/fanout.py)."""

from __future__ import annotations

from channels.layers import InMemoryChannelLayer

from queues.realtime.fanout import ProcessFanout


def broadcast(kind: str, event: int, serving: int = 0) -> dict:
    return {"type": f"queue.{kind}", "message": {"type": kind, "event": event, "serving": serving}}


def test_a_server_behind_skips_stale_progress_but_keeps_every_other_broadcast():
    fanout = ProcessFanout(InMemoryChannelLayer())
    for message in (broadcast("progress", 1, 10), broadcast("progress", 2, 5), broadcast("paused", 1),
                    broadcast("progress", 1, 20), broadcast("progress", 1, 30)):
        fanout.enqueue(message)
    assert [(m["type"], m["message"]["event"], m["message"]["serving"]) for m in fanout.pending] == [
        ("queue.progress", 2, 5), ("queue.paused", 1, 0), ("queue.progress", 1, 30)]
