"""The embedded admission loop: the tick every `QMS_TICK_SECONDS`, inside the server's event loop."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from .. import admission

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
