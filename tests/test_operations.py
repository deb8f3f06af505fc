"""The event creator's queue operations on both stores: pause, resume, admit N now, drain, undrain, reset.

Through the table (`queues.operations`), the staff API (`/api/events/<id>/queue/<operation>/`) and the admin's
console; the commands are in test_ops_commands.py.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event
from queues import admission
from queues.admin import admissions_per_minute
from queues.models import Admission
from queues.operations import OPERATIONS, perform
from queues.refusals import QueueClosed
from tests.fans import queue_fans

pytestmark = pytest.mark.django_db


def staff_client(make_user) -> APIClient:
    client = APIClient()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def ops(event: Event, action: str) -> str:
    return f"/api/events/{event.id}/queue/{action}/"


# --- the service -----------------------------------------------------------------------


def test_paused_event_admits_nobody_until_resumed(store, make_event, make_user):
    event = make_event(paused=False, admit_per_minute=6000)
    perform("pause", event)
    fans = queue_fans(event, make_user, 3)
    assert admission.tick(event).admitted == []
    perform("resume", event)
    assert [row.user_id for row in admission.tick(event).admitted] == [fan.id for fan in fans]
    assert not Event.objects.get(pk=event.pk).paused


def test_admit_now_goes_beyond_the_rate_but_not_beyond_max_active(store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=1, max_active=3)
    fans = queue_fans(event, make_user, 5)
    assert perform("admit", event, count=10).admitted == 3  # capped
    assert [row.user_id for row in Admission.objects.filter(event=event).order_by("ticket")] == [
        fan.id for fan in fans[:3]]  # in order
    assert admission.stats(event)["waiting"] == 2


def test_drain_refuses_new_fans_and_still_admits_those_waiting(store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=6000)
    waiting = queue_fans(event, make_user, 2)
    perform("drain", event)
    with pytest.raises(QueueClosed):
        admission.join(event, make_user())
    assert admission.join(event, waiting[0]).ticket == 1  # already in line: keeps the place
    perform("resume", event)
    assert {row.user_id for row in admission.tick(event).admitted} == {fan.id for fan in waiting}


def test_reset_empties_the_queue_and_keeps_issued_admissions_valid(store, make_event, make_user):
    event = make_event(admit_per_minute=6000)
    first = make_user()
    assert admission.join(event, first).state == "admitted"
    perform("pause", event)
    later = queue_fans(event, make_user, 2)
    assert perform("reset", event).dropped == 2
    assert all(admission.status(event, fan) is None for fan in later)
    token = Admission.objects.get(event=event, user=first).token
    claims, _ = admission.verify(token, redeem=False)
    assert claims["sub"] == str(first.id)
    assert admission.join(event, later[0]).position == 1  # a fresh start for whoever comes back


def test_fans_refused_while_draining_may_join_once_the_drain_is_undone(store, make_event, make_user):
    event = make_event(paused=True)
    perform("drain", event)
    fan = make_user()
    with pytest.raises(QueueClosed):
        admission.join(event, fan)
    perform("undrain", event)
    assert admission.join(Event.objects.get(pk=event.pk), fan).position == 1


def test_stats_say_paused_draining_and_prequeue(store, make_event):
    event = make_event(paused=False, sale_starts_at=timezone.now() + timedelta(hours=1))
    stats = admission.stats(event)
    assert (stats["paused"], stats["draining"], stats["prequeue"]) == (False, False, True)
    perform("pause", event)
    perform("drain", event)
    stats = admission.stats(Event.objects.get(pk=event.pk))
    assert (stats["paused"], stats["draining"]) == (True, True)


def test_before_the_opening_the_eta_of_the_last_in_line_includes_the_time_until_it(store, make_event, make_user):
    event = make_event(admit_per_minute=60, sale_starts_at=timezone.now() + timedelta(hours=1))
    queue_fans(event, make_user, 3)
    eta = admission.stats(event)["eta_last_seconds"]
    assert 3600 <= eta <= 3600 + 3 + 5  # an hour to the opening, then 3 at one a second (a few seconds of slack)
    event.sale_starts_at = timezone.now() - timedelta(seconds=1)
    assert admission.stats(event)["eta_last_seconds"] <= 3 + 5


def test_a_reset_keeps_the_admitted_total_of_the_ledger(store, make_event, make_user):
    event = make_event(admit_per_minute=6000)
    queue_fans(event, make_user, 2)
    assert admission.stats(event)["admitted_total"] == 2 and admission.stats(event)["live_admissions"] == 2
    perform("reset", event)
    assert admission.stats(event)["admitted_total"] == 2


def test_events_does_not_import_queues():
    """The queue (and its console) builds on events; events knows nothing of the queue."""
    offenders = []
    for module in (Path(settings.BASE_DIR) / "events").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{module.name}: {name}" for name in names if name.split(".")[0] == "queues"]
    assert offenders == []


# --- the staff API -----------------------------------------------------------------------


@pytest.mark.parametrize("action", list(OPERATIONS))
def test_operations_are_for_staff_only(make_event, make_user, action):
    event = make_event()
    anonymous = APIClient().post(ops(event, action), {"count": 1}, format="json")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    for user in (make_user(), make_user(is_staff=True)):  # a fan; staff without the permission on events
        client = APIClient()
        client.force_login(user)
        refused = client.post(ops(event, action), {"count": 1}, format="json")
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert Event.objects.get(pk=event.pk).paused == event.paused and not Event.objects.get(pk=event.pk).draining


def test_pause_and_resume_over_the_api(store, make_event, make_user):
    event = make_event(paused=False)
    client = staff_client(make_user)
    paused = client.post(ops(event, "pause"))
    assert paused.status_code == 200
    assert paused.json()["action"] == "pause" and paused.json()["stats"]["paused"] is True
    assert Event.objects.get(pk=event.pk).paused
    resumed = client.post(ops(event, "resume")).json()
    assert resumed["stats"]["paused"] is False and not Event.objects.get(pk=event.pk).paused


def test_admit_now_over_the_api(store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=1)
    queue_fans(event, make_user, 3)
    client = staff_client(make_user)
    body = client.post(ops(event, "admit"), {"count": 2}, format="json").json()
    assert (body["admitted"], body["stats"]["waiting"], body["stats"]["live_admissions"]) == (2, 1, 2)
    for count in (0, 10_001, "many", None):
        invalid = client.post(ops(event, "admit"), {"count": count}, format="json")
        assert (invalid.status_code, invalid.json()["code"]) == (400, "invalid")
        assert "count" in invalid.json()["errors"]


def test_drain_over_the_api_closes_the_queue_to_new_fans(store, make_event, make_user):
    event = make_event(paused=True)
    client = staff_client(make_user)
    assert client.post(ops(event, "drain")).status_code == 200
    assert Event.objects.get(pk=event.pk).draining
    newcomer = APIClient()
    newcomer.force_login(make_user())
    refused = newcomer.post(f"/api/events/{event.id}/queue/")
    assert (refused.status_code, refused.json()["code"]) == (409, "queue_draining")


def test_reset_over_the_api_says_how_many_lost_their_place(store, make_event, make_user):
    event = make_event(paused=True)
    queue_fans(event, make_user, 4)
    body = staff_client(make_user).post(ops(event, "reset")).json()
    assert (body["action"], body["dropped"], body["stats"]["waiting"]) == ("reset", 4, 0)


@pytest.mark.parametrize("action", list(OPERATIONS))
def test_every_operation_runs_over_the_api_and_from_the_admin(store, make_event, make_user, action):
    operation = OPERATIONS[action]
    arguments = {argument.name: argument.minimum for argument in operation.arguments}
    event = make_event(paused=operation.offered_when != ("paused", False),
                       draining=operation.offered_when == ("draining", True))
    body = staff_client(make_user).post(ops(event, action), arguments, format="json")
    assert (body.status_code, body.json()["action"], body.json()["event"]) == (200, action, event.id)
    assert set(body.json()["stats"]) >= {"paused", "draining", "prequeue", "waiting"}
    event.refresh_from_db()
    if operation.offered_when:  # the flag it flips
        flag, before = operation.offered_when
        assert getattr(event, flag) is not before
        setattr(event, flag, before)
        event.save()
    admin = operator(make_user)
    answer = admin.post(f"/admin/events/event/{event.id}/queue/{action}/", arguments, follow=True)
    assert answer.status_code == 200
    shown = [str(message) for message in answer.context["messages"]]
    assert len(shown) == 1 and ("Admitted" if action == "admit" else str(event)) in shown[0]
    if operation.offered_when:
        event.refresh_from_db()
        assert getattr(event, operation.offered_when[0]) is not operation.offered_when[1]


def test_undrain_over_the_api_lets_a_refused_fan_join(store, make_event, make_user):
    event = make_event(paused=True)
    client = staff_client(make_user)
    client.post(ops(event, "drain"))
    fan = APIClient()
    fan.force_login(make_user())
    assert fan.post(f"/api/events/{event.id}/queue/").status_code == 409
    body = client.post(ops(event, "undrain")).json()
    assert body["stats"]["draining"] is False
    joined = fan.post(f"/api/events/{event.id}/queue/")
    assert (joined.status_code, joined.json()["position"]) == (201, 1)


def test_operations_on_an_unknown_event_are_404(store, make_user):
    response = staff_client(make_user).post("/api/events/999999/queue/pause/")
    assert (response.status_code, response.json()["code"]) == (404, "event_not_found")


def test_operations_are_in_the_openapi_schema():
    paths = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for action, operation in OPERATIONS.items():
        entry = paths[f"/api/events/{{event_id}}/queue/{action}/"]["post"]
        assert entry["tags"] == ["operations"] and entry["description"] == str(operation.summary)
        assert ("requestBody" in entry) == bool(operation.arguments) and "200" in entry["responses"]
    count = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["schemas"][
        "AdmitRequest"]["properties"]["count"]
    assert (count["minimum"], count["maximum"]) == (1, 10_000)


# --- the admin ---------------------------------------------------------------------------


def operator(make_user):
    client = APIClient()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_admin_change_page_shows_live_numbers_actions_and_chart(store, make_event, make_user):
    event = make_event(paused=True)
    queue_fans(event, make_user, 3)
    page = operator(make_user).get(f"/admin/events/event/{event.id}/change/").content.decode()
    assert 'data-qms-stat="waiting">3<' in page
    assert f'data-qms-stats-url="/api/events/{event.id}/queue/stats/"' in page
    for action in ("resume", "admit", "pause", "undrain"):  # every button is there; the state shows some
        assert f'action="/admin/events/event/{event.id}/queue/{action}/"' in page
    for action in ("drain", "reset"):  # these ask first: a link to their confirmation page
        assert f'href="/admin/events/event/{event.id}/queue/{action}/"' in page
    assert "<svg" in page and "Admissions per minute" in page
    listing = operator(make_user).get("/admin/events/event/").content.decode()
    assert 'data-qms-stat="waiting">3<' in listing


def test_admin_buttons_pause_resume_admit_and_drain(store, make_event, make_user):
    event = make_event(paused=False, admit_per_minute=1)
    client = operator(make_user)
    base = f"/admin/events/event/{event.id}/queue"
    assert client.post(f"{base}/pause/").status_code == 302 and Event.objects.get(pk=event.pk).paused
    assert client.get(f"{base}/pause/").status_code == 405  # a GET changes nothing
    client.post(f"{base}/resume/")
    assert not Event.objects.get(pk=event.pk).paused
    perform("pause", event)
    queue_fans(event, make_user, 2)
    client.post(f"{base}/admit/", {"count": "1"})
    assert Admission.objects.filter(event=event).count() == 1
    client.post(f"{base}/drain/")
    assert Event.objects.get(pk=event.pk).draining
    client.post(f"{base}/undrain/")
    assert not Event.objects.get(pk=event.pk).draining


@pytest.mark.parametrize("count", ["0", "10001", "many"])
def test_admin_refuses_an_admit_count_outside_the_limits(store, make_event, make_user, count):
    event = make_event(paused=True)
    queue_fans(event, make_user, 1)
    answer = operator(make_user).post(f"/admin/events/event/{event.id}/queue/admit/", {"count": count}, follow=True)
    [message] = answer.context["messages"]
    assert message.level_tag == "error" and str(message).startswith("count:")
    assert not Admission.objects.filter(event=event).exists()


def test_admin_drain_asks_first(store, make_event, make_user):
    event = make_event(paused=True)
    queue_fans(event, make_user, 2)
    client = operator(make_user)
    confirm = client.get(f"/admin/events/event/{event.id}/queue/drain/")
    assert confirm.status_code == 200 and "2 fans waiting keep their places" in confirm.content.decode()
    assert not Event.objects.get(pk=event.pk).draining
    client.post(f"/admin/events/event/{event.id}/queue/drain/")
    assert Event.objects.get(pk=event.pk).draining


def test_admin_console_shows_only_what_the_queue_state_offers(store, make_event, make_user):
    event = make_event(paused=True, draining=True)
    page = operator(make_user).get(f"/admin/events/event/{event.id}/change/").content.decode()
    assert 'data-qms-operation="resume" data-qms-when="paused:true">' in page
    assert 'data-qms-operation="pause" data-qms-when="paused:false" hidden>' in page
    assert 'data-qms-operation="undrain" data-qms-when="draining:true">' in page
    assert 'data-qms-operation="drain" data-qms-when="draining:false" hidden>' in page
    assert 'data-qms-badge="draining" data-qms-when="draining:true">' in page


def test_unknown_admin_operation_is_404(make_event, make_user):
    assert operator(make_user).post(f"/admin/events/event/{make_event().id}/queue/explode/").status_code == 404


def test_admin_reset_asks_first(store, make_event, make_user):
    event = make_event(paused=True)
    queue_fans(event, make_user, 2)
    client = operator(make_user)
    confirm = client.get(f"/admin/events/event/{event.id}/queue/reset/")
    assert confirm.status_code == 200 and "will lose their place" in confirm.content.decode()
    assert admission.stats(event)["waiting"] == 2
    client.post(f"/admin/events/event/{event.id}/queue/reset/")
    assert admission.stats(event)["waiting"] == 0


def test_admin_bulk_reset_needs_the_confirmation(store, make_event, make_user):
    event = make_event(paused=True)
    queue_fans(event, make_user, 2)
    client = operator(make_user)
    asked = client.post("/admin/events/event/", {"action": "reset_queues", "_selected_action": [event.id]})
    assert asked.status_code == 200 and "Yes: Reset queue — this event" in asked.content.decode()
    assert admission.stats(event)["waiting"] == 2
    client.post("/admin/events/event/", {"action": "reset_queues", "_selected_action": [event.id], "confirm": "yes"})
    assert admission.stats(event)["waiting"] == 0


def test_admin_actions_need_change_permission(make_event, make_user):
    event = make_event()
    client = APIClient()
    client.force_login(make_user(is_staff=True))  # staff, but no permission on events
    assert client.post(f"/admin/events/event/{event.id}/queue/pause/").status_code == 403
    assert not Event.objects.get(pk=event.pk).paused


def test_chart_counts_admissions_per_minute_from_the_ledger(make_event, make_user):
    event = make_event()
    now = timezone.now().replace(second=30)
    for minutes_ago, count in ((0, 3), (2, 1), (45, 5)):  # the last one is outside the window
        for _ in range(count):
            issued = now - timedelta(minutes=minutes_ago)
            Admission.objects.create(event=event, user=make_user(), ticket=Admission.objects.count() + 1,
                                     jti=f"jti-{Admission.objects.count()}", token="t", issued_at=issued,
                                     expires_at=issued + timedelta(minutes=10))
    series = admissions_per_minute(event, minutes=30, now=now)
    assert len(series) == 30
    assert [point["count"] for point in series[-3:]] == [1, 0, 3]
    assert sum(point["count"] for point in series) == 4


# --- the demo reservation page closes the loop ----------------------------------------------


def test_demo_reservation_verifies_the_token_and_booking_frees_the_slot(store, make_event, make_user):
    event = make_event(max_active=1)
    fan = make_user()
    token = admission.join(event, fan).admission.token
    client = APIClient()
    shown = client.get("/demo/reservation/", {"token": token})
    assert shown.status_code == 200 and f"<dd>{fan.id}</dd>" in shown.content.decode()
    booked = client.post("/demo/reservation/", {"token": token})
    assert booked.status_code == 200 and "Booked" in booked.content.decode()
    assert admission.stats(event)["live_admissions"] == 0  # released: the next fan may enter
    again = client.post("/demo/reservation/", {"token": token})
    assert again.status_code == 400 and "token_released" in again.content.decode()
    assert client.get("/demo/reservation/", {"token": "nonsense"}).status_code == 400
