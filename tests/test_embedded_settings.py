"""The embedded default's settings (`make run`: no QMS_REDIS_URL, SQLite): what its server runs on."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.servers import ROOT

# Counts the SQLite connections opened by 200 database calls made the way the socket consumer makes them.
CONNECTIONS_PER_CALLS = """
import asyncio, django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "qms_project.settings"
django.setup()
from channels.db import database_sync_to_async
from django.db import connection
from django.db.backends.signals import connection_created
opened = []
connection_created.connect(lambda **kwargs: opened.append(1), weak=False)
def query():
    with connection.cursor() as cursor:
        cursor.execute("select 1")
async def main():
    for _ in range(50):
        await asyncio.gather(*[database_sync_to_async(query, thread_sensitive=False)() for _ in range(4)])
asyncio.run(main())
from django.conf import settings
print(settings.CHANNEL_LAYERS["default"]["BACKEND"], len(opened))
"""


def embedded(tmp_path) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("QMS_REDIS_URL", "DATABASE_URL", "DATABASE_CONN_MAX_AGE")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    out = subprocess.run([sys.executable, "-c", CONNECTIONS_PER_CALLS], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    return out[0], int(out[1])


def test_the_embedded_default_uses_the_amortized_in_memory_channel_layer(tmp_path):
    backend, _ = embedded(tmp_path)
    assert backend == "queues.realtime.memory_layer.MemoryChannelLayer"


def test_sqlite_connections_are_kept_per_thread_not_opened_per_call(tmp_path):
    _, opened = embedded(tmp_path)
    assert 1 <= opened <= 32  # at most one per worker thread of the executor, not one per call (200)
