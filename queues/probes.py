"""What machines poll: the liveness and readiness probes, the Prometheus metrics, and the JWKS document the
reservation service verifies admission tokens with. Plain Django views, outside the DRF API."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from . import metrics, tokens
from .store import get_store

logger = logging.getLogger(__name__)


@require_GET
@cache_control(public=True, max_age=300)
def jwks(request):
    """Public keys that verify admission tokens (several during a key rotation)."""
    return JsonResponse(tokens.jwks())


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database unreachable")
        return False


def _store_ok() -> bool:
    try:
        return get_store().ping()
    except Exception:
        logger.exception("health: queue store unreachable")
        return False


def _channel_layer_ok() -> bool:
    try:
        # A no-op round trip through the layer's own client (a ZREM on Redis): no message is left behind.
        async_to_sync(get_channel_layer().group_discard)("qms.readiness", "readiness.probe")
        return True
    except Exception:
        logger.exception("health: channel layer unreachable")
        return False


@require_GET
@cache_control(no_store=True)
def healthz(request):
    """Liveness: the process serves requests. Checks no dependency, so an outage elsewhere restarts nothing."""
    return JsonResponse({"status": "ok"})


@require_GET
@cache_control(no_store=True)
def readyz(request):
    """Readiness: the database, the queue store and the channel layer answer (503 otherwise)."""
    checks = {"database": _database_ok(), "store": _store_ok(), "channel_layer": _channel_layer_ok()}
    ready = all(checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status=200 if ready else 503)


@require_GET
@cache_control(no_store=True)
def prometheus_metrics(request):
    """Prometheus exposition: counters of every process (multiprocess mode) and the queue state now."""
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
