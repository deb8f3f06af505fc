"""Plain Django views: the JWKS document and the health check."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from . import tokens
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


@require_GET
@cache_control(no_store=True)
def healthz(request):
    checks = {"database": _database_ok(), "store": _store_ok()}
    healthy = all(checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status=200 if healthy else 503)
