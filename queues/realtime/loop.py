"""The embedded admission loop: the tick every `QMS_TICK_SECONDS`, inside the server's event loop; and the
embedded webhook deliveries, the same worker Celery runs (queues/webhooks/delivery.py), beside it."""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.db import database_sync_to_async
from django.conf import settings

from .. import admission, draw
from ..webhooks import delivery

logger = logging.getLogger(__name__)


def tick_all() -> int:
    """One tick for every event (each publishes its own messages); a failing event does not stop the others."""
    admitted = 0
    for event in admission.tick_events():
        try:
            admitted += len(admission.tick(event).admitted)
        except Exception:
            logger.exception("tick failed event=%s", event.id)
    return admitted


async def run_admission_loop(interval: float | None = None) -> None:
    interval = interval or settings.QMS_TICK_SECONDS
    loop = asyncio.get_running_loop()
    logger.info("embedded admission loop: a tick every %.2fs", interval)
    while True:
        started = loop.time()
        try:
            # The tick publishes through async_to_sync, which hops back onto this loop:
            # the in-memory channel layer is only safe to use from its own loop.
            await database_sync_to_async(tick_all)()
        except Exception:
            logger.exception("admission loop iteration failed")
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


async def run_webhook_loop(interval: float = 1.0, run_seconds: float = 5.0) -> None:
    """Send due webhooks, as Celery's task does. In a thread of its own (not the tick's: a receiver that takes
    10 s must not hold a tick), so admission never waits for a receiver."""
    stop = threading.Event()
    run = database_sync_to_async(delivery.run, thread_sensitive=False)
    logger.info("embedded webhook deliveries: every %.2fs", interval)
    try:
        while True:
            try:
                await run(run_seconds, stop)
            except Exception:
                logger.exception("webhook delivery run failed")
            await asyncio.sleep(interval)
    finally:
        stop.set()  # cancelled with the server: the run in its thread stops claiming


async def run_draw_record_loop(interval: float = 1.0) -> None:
    """Write the draw's record once the opening tick froze it, as Celery's task does: in a thread of its own, so
    the ticks after the opening admit while the rows are written."""
    record = database_sync_to_async(draw.record_opened, thread_sensitive=False)
    while True:
        try:
            await record()
        except Exception:
            logger.exception("draw record run failed")
        await asyncio.sleep(interval)
