"""The REST API: auth, join/status/leave, stats, events, errors with stable codes, schema, health."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event
from queues import admission

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": user.username, "password": "pw-123456"}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


def test_token_obtain_and_refresh(make_user):
    user = make_user()
    client = APIClient()
    pair = client.post("/api/auth/token/", {"username": user.username, "password": "pw-123456"}, format="json")
    assert pair.status_code == 200
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": pair.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()
    wrong = client.post("/api/auth/token/", {"username": user.username, "password": "nope"}, format="json")
    assert wrong.status_code == 401 and wrong.json()["code"] == "no_active_account"


def test_join_status_and_leave(store, make_event, make_user):
    event = make_event(paused=True)
    first, second = bearer(make_user()), bearer(make_user())
    url = f"/api/events/{event.id}/queue/"
    joined = first.post(url)
    assert joined.status_code == 201
    assert joined.json() | {"sale_starts_at": None} == {
        "state": "waiting", "ticket": 1, "position": 1, "ahead": 0, "waiting": 1, "served": 0, "eta_seconds": 1,
        "paused": True, "sale_starts_at": None, "admission": None, "message": None, "draw_rank": None,
    }
    assert first.post(url).status_code == 200  # joining again keeps the ticket
    second.post(url)
    status = second.get(url).json()
    assert (status["position"], status["ahead"], status["waiting"], status["ticket"]) == (2, 1, 2, 2)
    assert first.delete(url).status_code == 204
    assert second.get(url).json()["position"] == 1
    missing = first.get(url)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_in_queue")
    assert first.delete(url).json()["code"] == "not_in_queue"


def test_polling_fan_receives_a_token_and_redirect(store, make_event, make_user):
    event = make_event(paused=True, reservation_url="https://tickets.example/reserve?show=7")
    client = bearer(make_user())
    client.post(f"/api/events/{event.id}/queue/")
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    from queues import admission

    admission.tick(event)
    body = client.get(f"/api/events/{event.id}/queue/").json()
    assert body["state"] == "admitted"
    assert body["admission"]["redirect_url"] == f"https://tickets.example/reserve?show=7&token={body['admission']['token']}"


def test_session_login_works_for_the_page(store, make_event, make_user):
    event = make_event(paused=True)
    user = make_user()
    client = APIClient()
    client.force_login(user)
    joined = client.post(f"/api/events/{event.id}/queue/")
    assert joined.status_code == 201
    assert (joined.json()["state"], joined.json()["position"]) == ("waiting", 1)
    assert client.get(f"/api/events/{event.id}/queue/").json()["ticket"] == joined.json()["ticket"]  # the session's fan
    assert admission.status(event, user).ticket == joined.json()["ticket"]


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unauthenticated_is_401_with_a_code(make_event, method):
    event = make_event()
    response = getattr(APIClient(), method)(f"/api/events/{event.id}/queue/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_unknown_event_is_404_with_a_code(store, make_user):
    response = bearer(make_user()).post("/api/events/424242/queue/")
    assert (response.status_code, response.json()["code"]) == (404, "event_not_found")


def test_bad_jwt_is_401_with_a_code(make_event):
    event = make_event()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = client.post(f"/api/events/{event.id}/queue/")
    assert (response.status_code, response.json()["code"]) == (401, "token_not_valid")


def test_stats_are_staff_only(store, make_event, make_user):
    event = make_event(paused=True)
    fan = bearer(make_user())
    fan.post(f"/api/events/{event.id}/queue/")
    assert fan.get(f"/api/events/{event.id}/queue/stats/").status_code == 403
    staff = bearer(make_user(is_staff=True))
    stats = staff.get(f"/api/events/{event.id}/queue/stats/").json()
    assert (stats["waiting"], stats["joined_total"], stats["live_admissions"], stats["paused"]) == (1, 1, 0, True)


def test_verify_malformed_body_is_400_with_field_errors():
    response = APIClient().post("/api/admissions/verify/", {"redeem": "maybe"}, format="json")
    body = response.json()
    assert response.status_code == 400 and body["code"] == "invalid"
    assert set(body["errors"]) == {"token", "redeem"}


def test_verify_non_json_body_is_400():
    response = APIClient().post("/api/admissions/verify/", "{not json", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_events_are_readable_by_anyone_and_writable_by_staff(make_event, make_user):
    event = make_event(name="Stadium Tour")
    listing = APIClient().get("/api/events/")
    assert listing.status_code == 200 and listing.json()["results"][0]["slug"] == "stadium-tour"
    payload = {"name": "Arena Night", "reservation_url": "https://tickets.example/r",
               "sale_starts_at": (timezone.now() + timedelta(days=1)).isoformat(), "admit_per_minute": 120}
    denied = bearer(make_user()).post("/api/events/", payload, format="json")
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    staff = bearer(make_user(is_staff=True))
    created = staff.post("/api/events/", payload, format="json")
    assert created.status_code == 201 and created.json()["slug"] == "arena-night"
    assert staff.patch(f"/api/events/{event.id}/", {"paused": True}, format="json").json()["paused"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [("admit_per_minute", 0), ("max_active", 0), ("reservation_url", "ftp://tickets.example/"),
     ("reservation_url", "javascript:alert(1)"), ("token_ttl_seconds", 5)],
)
def test_event_validation_refuses_bad_settings(make_user, field, value):
    payload = {"name": "Bad", "reservation_url": "https://tickets.example/r", field: value}
    response = bearer(make_user(is_staff=True)).post("/api/events/", payload, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


def test_schema_and_docs_are_served():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/api/events/{event_id}/queue/", "/api/admissions/verify/", "/api/admissions/release/",
                 "/api/events/{event_id}/queue/stats/", "/api/auth/token/"]:
        assert path in paths
    assert APIClient().get("/api/docs/").status_code == 200
