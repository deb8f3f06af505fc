"""Admission gated by the protected site's health: poll `Event.health_check_url`, share the answer.

At most one poll per event every `QMS_HEALTH_POLL_SECONDS` across all workers
(a lock and the result live in the shared cache, so several workers do not
stampede a struggling site), each bounded by `QMS_HEALTH_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.cache import cache

from events.models import Event

logger = logging.getLogger(__name__)


def _poll(url: str) -> bool:
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "qms-health-gate"})
    try:
        with urllib.request.urlopen(request, timeout=settings.QMS_HEALTH_TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def site_healthy(event: Event) -> bool:
    """True when the event has no health check, or its site answered 2xx at the last poll."""
    if not event.health_check_url:
        return True
    key = f"qms:health:{event.id}:{event.health_check_url}"
    cached = cache.get(key)
    fresh = cached is not None and time.time() - cached[1] < settings.QMS_HEALTH_POLL_SECONDS
    if fresh or not cache.add(f"{key}:lock", 1, timeout=max(1, int(settings.QMS_HEALTH_POLL_SECONDS))):
        return cached[0] if cached is not None else True  # someone else is polling: use the last answer
    healthy = _poll(event.health_check_url)
    cache.set(key, (healthy, time.time()), timeout=3600)
    cache.delete(f"{key}:lock")
    if cached is None or cached[0] != healthy:
        logger.warning("health gate event=%s healthy=%s url=%s", event.id, healthy, event.health_check_url)
    return healthy
