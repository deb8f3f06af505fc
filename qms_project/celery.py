"""The Celery app: Redis broker from `QMS_REDIS_URL`, configuration from Django settings."""

import os

from celery import Celery

from . import broker

broker.install()  # before any broker connection: a failover must not end the worker
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

app = Celery("qms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
