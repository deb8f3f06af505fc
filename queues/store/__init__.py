"""The queue store: the backend named by `settings.QMS_STORE`, one per process."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseQueueStore

_store: BaseQueueStore | None = None
_lock = threading.Lock()


def build_store(config: dict) -> BaseQueueStore:
    options = {k.lower(): v for k, v in config.items() if k != "BACKEND"}
    return import_string(config["BACKEND"])(**options)


def get_store() -> BaseQueueStore:
    """The process-wide store configured in settings."""
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = build_store(settings.QMS_STORE)
    return _store


def reset_store_cache() -> None:
    """Forget the process-wide store (tests switching settings)."""
    global _store
    _store = None
