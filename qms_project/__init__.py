"""QMS: a virtual waiting room for Django (settings, ASGI app, Celery app, URLs)."""
