"""QMS: a virtual waiting room for Django (settings, ASGI app, Celery app, URLs)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
