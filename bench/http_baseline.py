"""The HTTP benchmarks' baseline: QMS's settings with no middleware and one Django JSON view.

Used as DJANGO_SETTINGS_MODULE (and, through ROOT_URLCONF, as its own URLconf) by bench/http_server.py, so
the baseline is served by the same server software, in the same run, as QMS (bench/http_path.py).
"""

from django.http import JsonResponse
from django.urls import path

from qms_project.settings import *  # noqa: F403 - the same settings, database and caches as QMS

MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.http_baseline"


def baseline(request):
    """A plain Django JSON view: the floor of a Django answer on this server."""
    return JsonResponse({"status": "ok"})


urlpatterns = [path("baseline", baseline)]
