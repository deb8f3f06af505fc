"""Queue abuse and deployment security: throttles, one ticket per user, CSRF, staff-only, check --deploy."""

from __future__ import annotations

import re
import secrets
import subprocess

import pytest
import redis
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from .e2e.servers import PYTHON, ROOT, base_env

pytestmark = pytest.mark.django_db


def rate_count(scope: str) -> int:
    return int(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])


def counted_in_redis(settings, scope: str) -> bool:
    """The throttle's history sits in the shared Redis cache (every process reads the same counter)."""
    cache = settings.CACHES["default"]
    client = redis.Redis.from_url(cache["LOCATION"])
    return any(client.scan_iter(f"{cache['KEY_PREFIX']}:*throttle_{scope}_*"))


def test_joins_are_throttled_per_user_with_retry_after(store, make_event, make_user, shared_cache, settings):
    event = make_event(paused=True)
    client = APIClient()
    client.force_authenticate(make_user())
    statuses = [client.post(f"/api/events/{event.id}/queue/").status_code for _ in range(rate_count("join_user"))]
    assert set(statuses) <= {200, 201}
    refused = client.post(f"/api/events/{event.id}/queue/")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    other = APIClient()
    other.force_authenticate(make_user())
    assert other.post(f"/api/events/{event.id}/queue/").status_code == 201  # another fan is not held back
    if shared_cache == "redis":
        assert counted_in_redis(settings, "join_user")


def test_page_session_join_needs_the_csrf_token(store, make_event, make_user):
    event = make_event(paused=True)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user())
    refused = client.post(f"/api/events/{event.id}/queue/")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert "CSRF" in refused.json()["detail"]


def test_staff_endpoints_refuse_fans(store, make_event, make_user):
    event = make_event()
    client = APIClient()
    client.force_authenticate(make_user())
    for path in (f"/api/events/{event.id}/queue/stats/", f"/api/events/{event.id}/queue/pause/"):
        response = client.get(path) if path.endswith("stats/") else client.post(path)
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied"), path
    refused = client.patch(f"/api/events/{event.id}/", {"paused": True}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    event.refresh_from_db()
    assert event.paused is False  # and nothing changed


def check_deploy(tmp_path, **env) -> tuple[int, set[str], str]:
    """`manage.py check --deploy` in a fresh process with `env`: exit status, warning ids, output."""
    # Only the switches given here: none inherited from the shell that runs the tests.
    inherited = {name: value for name, value in base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}").items()
                 if not name.startswith("DJANGO_") or name == "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env={**inherited, **env}, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    return result.returncode, set(re.findall(r"\((security\.[EW]\d+)\)", output)), output


# What the embedded defaults leave for production to switch on: no HSTS, no HTTPS redirect, session and CSRF
# cookies sent over plain HTTP (DJANGO_SECURE=1), and the public embedded secret key (DJANGO_SECRET_KEY).
EMBEDDED_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016", "security.W009"}


def test_production_settings_pass_check_deploy(tmp_path):
    returncode, warnings, output = check_deploy(tmp_path, DJANGO_SECURE="1",
                                                DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                                                DJANGO_ALLOWED_HOSTS="queue.example.com")
    assert (returncode, warnings) == (0, set()), output


def test_embedded_defaults_fail_check_deploy_naming_what_production_must_set(tmp_path):
    """The check is real: without the production switches it names what is missing, and nothing else
    (DEBUG stays off even in the embedded run)."""
    returncode, warnings, output = check_deploy(tmp_path)
    assert returncode != 0
    assert warnings == EMBEDDED_WARNINGS, output


@pytest.mark.parametrize(("env", "warning"), [
    ({"DJANGO_DEBUG": "1"}, "security.W018"),
    ({"DJANGO_SECRET_KEY": None}, "security.W009"),  # unset: the embedded key, which is public
    ({"DJANGO_HSTS_SECONDS": "0"}, "security.W004"),
])
def test_one_production_switch_undone_is_named(tmp_path, env, warning):
    production = {"DJANGO_SECURE": "1", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                  "DJANGO_ALLOWED_HOSTS": "queue.example.com"}
    production.update(env)
    returncode, warnings, output = check_deploy(tmp_path, **{k: v for k, v in production.items() if v is not None})
    assert returncode != 0
    assert warnings == {warning}, output
