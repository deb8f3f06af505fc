"""The embedded admission loop: the tick every `QMS_TICK_SECONDS`, inside the server's event loop."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import admission
from .notify import publish_tick

logger = logging.getLogger(__name__)


def tick_all() -> list:
    """One tick for every event; a failing event does not stop the others."""
    results = []
    for event in admission.tick_events():
        try:
            results.append((event, admission.tick(event)))
        except Exception:
            logger.exception("tick failed event=%s", event.id)
    return results


async def run_admission_loop(interval: float | None = None) -> None:
    interval = interval or settings.QMS_TICK_SECONDS
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    logger.info("embedded admission loop: a tick every %.2fs", interval)
    while True:
        started = loop.time()
        try:
            for event, result in await database_sync_to_async(tick_all)():
                await publish_tick(layer, event, result)
        except Exception:
            logger.exception("admission loop iteration failed")
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
