"""Webhooks: the signature (checked with docs/API.md's snippet), the SSRF guard, the backoff, the outbox written in
the change's own transaction, and the worker sending to a real local receiver."""

from __future__ import annotations

import random
import time
import warnings
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from queues import admission, operations
from queues.models import (
    Admission,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
)
from queues.webhooks import addresses, delivery, outbox, retention, signing
from queues.webhooks.admin import WebhookEndpointForm
from queues.webhooks.transport import Answer
from tests.fans import queue_fans
from tests.sites import WebhookReceiver, documented_webhook_verifier

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-test-0123456789"


@pytest.fixture(autouse=True)
def fresh_outbox_state():
    outbox.forget_process_state()
    yield
    outbox.forget_process_state()


@pytest.fixture
def local_receivers(settings):
    """Receivers on this machine's loopback, allowed as an operator would allow them; closed afterwards."""
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    opened = []

    def make(**options) -> WebhookReceiver:
        opened.append(WebhookReceiver(SECRET, **options))
        return opened[-1]

    yield make
    for receiver in opened:
        receiver.close()


def endpoint_for(url: str, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, secret=SECRET, **fields)


def make_due(*rows: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=timezone.now())


# --- signing -----------------------------------------------------------------------------------------------

def test_the_documented_snippet_accepts_a_delivery_and_refuses_tampering_and_old_timestamps():
    verify = documented_webhook_verifier()
    body = signing.body("abc", "admission.issued", timezone.now(), {"user": 1})
    now = int(time.time())
    headers = signing.headers(SECRET, "abc", now, body)
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body.replace(b'"user":1', b'"user":2'))
    assert not verify("another-secret-0000", headers, body)
    old = signing.headers(SECRET, "abc", now - 301, body)
    assert not verify(SECRET, old, body)
    assert verify(SECRET, signing.headers(SECRET, "abc", now - 299, body), body)


# --- the SSRF guard ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "fe80::1", "224.0.0.1", "0.0.0.0", "240.0.0.1", "100.64.0.1",
                                     "::ffff:127.0.0.1", "fc00::1"])
def test_loopback_private_link_local_multicast_and_reserved_addresses_are_refused(address):
    assert addresses.refusal(address) is not None


def test_a_public_address_is_allowed():
    assert addresses.refusal("93.184.216.34") is None
    assert addresses.refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_a_host_name_that_resolves_to_loopback_is_refused(settings):
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(addresses.AddressRefused, match="127.0.0.1"):
        addresses.resolve("http://localhost:9/hook")


def test_a_save_refuses_what_needs_no_lookup_and_leaves_names_to_the_delivery(settings):
    """A staff member's save never waits on a resolver (an unreachable one takes 5 s per name): address
    literals and `localhost` are refused at once; a name is resolved, and refused if need be, at each delivery."""
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = []
    for url in ("http://127.0.0.1/hook", "http://[::1]/hook", "http://10.1.2.3/hook", "http://api.localhost/hook"):
        with pytest.raises(ValidationError):
            addresses.validate_receiver_url(url)
    addresses.validate_receiver_url("https://receiver.invalid/hook")  # no lookup: .invalid never resolves
    with pytest.raises(addresses.AddressRefused, match="does not resolve"):
        addresses.resolve("https://receiver.invalid/hook")


@pytest.mark.parametrize("allowed", ["localhost", "127.0.0.1"])
def test_allowed_hosts_exempt_a_host_by_name_or_address(settings, allowed):
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = [allowed]
    assert "127.0.0.1" in addresses.resolve("http://localhost:9/hook").addresses


def test_the_guard_runs_again_at_delivery_time(local_receivers, settings, make_event):
    """Saved while allowed, refused once no longer allowed (as DNS changing would): nothing is sent."""
    receiver = local_receivers()
    endpoint = endpoint_for(receiver.url)
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_PAUSED)
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = []
    assert delivery.deliver_due(5) == 1
    row = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.PENDING, 1, None)
    assert row.last_error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1 (loopback)")
    assert receiver.received == []


def test_the_staff_api_refuses_a_receiver_on_a_private_address(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.post("/api/webhooks/endpoints/", {"url": "http://10.0.0.8/hook", "secret": SECRET},
                           format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["codes"]["url"] == ["receiver_refused"]
    assert "private" in str(response.json()["errors"]["url"])
    assert not WebhookEndpoint.objects.exists()


def admin_add_endpoint(admin_client, url: str):
    return admin_client.post("/admin/queues/webhookendpoint/add/", {
        "url": url, "secret": SECRET, "active": "on", "all_events": "on", "threshold_hysteresis": "0"})


def test_the_admin_says_why_a_receiver_is_refused(admin_client):
    page = admin_add_endpoint(admin_client, "http://10.0.0.8/hook").content.decode()
    assert "10.0.0.8 resolves to 10.0.0.8 (private)" in page
    assert not WebhookEndpoint.objects.exists()


def test_the_endpoint_form_builds_no_url_field_without_a_scheme_of_its_own():
    """Django 6 changes the URL field's default scheme and warns about every field built without one: the form
    leaves building its fields to the admin, which passes `assume_scheme` (subclassing builds them again)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        type("EndpointForm", (WebhookEndpointForm,), {})


def test_the_admin_takes_a_url_without_scheme_as_https(admin_client, settings):
    settings.QMS_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert admin_add_endpoint(admin_client, "127.0.0.1:9/hooks").status_code == 302
    assert WebhookEndpoint.objects.get().url == "https://127.0.0.1:9/hooks"


# --- retries -----------------------------------------------------------------------------------------------

def test_backoff_doubles_from_one_second_to_an_hour_with_jitter_below_each_step():
    low, high = random.Random(), random.Random()
    low.uniform = lambda a, b: a
    high.uniform = lambda a, b: b
    nominal = [min(3600, 2 ** n) for n in range(20)]
    assert [delivery.backoff_seconds(n + 1, high) for n in range(20)] == nominal
    assert [delivery.backoff_seconds(n + 1, low) for n in range(20)] == [step / 2 for step in nominal]


def test_a_delivery_is_failed_once_its_next_attempt_would_fall_after_its_retry_period(make_event):
    endpoint_for("https://hooks.example/")
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_PAUSED)
    row = WebhookDelivery.objects.get()
    row.retry_until = timezone.now() + timedelta(seconds=0.4)  # the first retry waits 0.5 s at least
    delivery.record_answers([(row, Answer(503, "HTTP 503"))])
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.FAILED, 1, 503)


def test_a_retry_carries_the_same_id_and_the_receiver_acts_once(local_receivers, make_event):
    receiver = local_receivers(fail_first=True)
    endpoint_for(receiver.url)
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_PAUSED)
    assert delivery.deliver_due(5) == 1
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_status_code, row.attempts) == (WebhookDeliveryStatus.PENDING, 500, 1)
    assert row.next_attempt_at > timezone.now()
    make_due(row)
    assert delivery.deliver_due(5) == 1
    row.refresh_from_db()
    assert (row.status, row.last_status_code, row.attempts) == (WebhookDeliveryStatus.DELIVERED, 200, 2)
    assert [(r["id"], r["status"]) for r in receiver.received] == [(row.webhook_id, 500), (row.webhook_id, 200)]
    assert all(r["verified"] and r["header_id_matches_body"] for r in receiver.received)
    assert list(receiver.effects) == [row.webhook_id]


def test_a_redirect_is_not_followed(local_receivers, make_event):
    receiver = local_receivers(status=302)
    endpoint_for(receiver.url)
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_PAUSED)
    delivery.deliver_due(5)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.last_status_code) == (WebhookDeliveryStatus.PENDING, 302)


def test_a_receiver_slower_than_the_timeout_fails_the_attempt_and_others_are_still_delivered(
        local_receivers, settings, make_event):
    settings.QMS_WEBHOOK_TIMEOUT = 1.0
    slow, fast = local_receivers(sleep=3), local_receivers()
    slow_endpoint, fast_endpoint = endpoint_for(slow.url), endpoint_for(fast.url)
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_PAUSED)
    assert delivery.deliver_due(5) == 2
    slow_row, fast_row = (WebhookDelivery.objects.get(endpoint=e) for e in (slow_endpoint, fast_endpoint))
    assert (fast_row.status, fast_row.last_status_code) == (WebhookDeliveryStatus.DELIVERED, 200)
    assert (slow_row.status, slow_row.last_status_code) == (WebhookDeliveryStatus.PENDING, None)
    assert slow_row.last_error.startswith("timeout")


def test_redeliver_over_the_staff_api_sends_a_failed_delivery_again_with_its_id(local_receivers, admin_user,
                                                                               make_event):
    receiver = local_receivers()
    endpoint_for(receiver.url)
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_RESUMED)
    WebhookDelivery.objects.update(status=WebhookDeliveryStatus.FAILED, attempts=30)
    assert delivery.deliver_due(5) == 0
    client = APIClient()
    client.force_authenticate(admin_user)
    row = WebhookDelivery.objects.get()
    answer = client.post(f"/api/webhooks/deliveries/{row.id}/redeliver/")
    assert (answer.status_code, answer.json()["status"]) == (200, "pending")
    assert delivery.deliver_due(5) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (WebhookDeliveryStatus.DELIVERED, 31)
    assert list(receiver.effects) == [row.webhook_id]
    listed = client.get("/api/webhooks/deliveries/", {"status": "delivered"}).json()
    assert [item["webhook_id"] for item in listed["results"]] == [row.webhook_id]


def test_the_webhook_admin_speaks_german(admin_client):
    endpoint = endpoint_for("https://hooks.example/", active=False)
    page = admin_client.get(f"/admin/queues/webhookendpoint/{endpoint.pk}/change/",
                            HTTP_ACCEPT_LANGUAGE="de").content.decode()
    for words in ("Webhook-Endpunkt", "Ereignistypen", "Was er empfängt", "Keiner angekreuzt: alle Typen.",
                  "Fehlschläge in Folge", "Pausiert bis"):
        assert words in page
    log = admin_client.get("/admin/queues/webhookdelivery/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Webhook-Zustellungen" in log and "Abgebrochen (Endpunkt deaktiviert)" in log


def test_the_admin_log_redelivers_the_rows_picked(admin_client, make_event):
    endpoint_for("https://hooks.example/")
    outbox.queue_changed(make_event(), WebhookEventType.QUEUE_RESUMED)
    WebhookDelivery.objects.update(status=WebhookDeliveryStatus.FAILED, last_status_code=500)
    row = WebhookDelivery.objects.get()
    page = admin_client.get("/admin/queues/webhookdelivery/")
    assert page.status_code == 200 and row.webhook_id in page.content.decode()
    admin_client.post("/admin/queues/webhookdelivery/",
                      {"action": "redeliver_selected", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.status == WebhookDeliveryStatus.PENDING


# --- the circuit breaker ------------------------------------------------------------------------------------

@pytest.fixture
def breaker(settings):
    """Three failures in a row open an endpoint's breaker; one delivery in flight per endpoint, so the order in
    which rows are sent is the order the receiver sees them."""
    settings.QMS_WEBHOOK_BREAKER_FAILURES = 3
    settings.QMS_WEBHOOK_PER_ENDPOINT = 1


def end_backoff(endpoint: WebhookEndpoint) -> None:
    """The endpoint's backoff is over (as if its time had passed)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(backoff_until=timezone.now())


def changes(event, count: int) -> list[str]:
    """`count` changes written for the endpoints; their webhook ids, oldest first."""
    for _ in range(count):
        outbox.queue_changed(event, WebhookEventType.QUEUE_PAUSED)
    return list(WebhookDelivery.objects.order_by("created_at", "id").values_list("webhook_id", flat=True))


def test_an_endpoint_failing_n_times_in_a_row_gets_one_probe_per_backoff_not_an_attempt_per_row(
        local_receivers, breaker, make_event):
    receiver = local_receivers(status=500)
    endpoint = endpoint_for(receiver.url)
    ids = changes(make_event(), 10)
    assert delivery.deliver_due(5) == 3  # the 3rd failure in a row opens the breaker: the run ends
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 3 and endpoint.backoff_until > timezone.now()
    assert [r["id"] for r in receiver.received] == ids[:3]
    make_due(*WebhookDelivery.objects.all())  # every row's own retry is due: they still wait for the endpoint
    assert delivery.deliver_due(5) == 0
    end_backoff(endpoint)
    assert delivery.deliver_due(5) == 1  # one probe, the oldest row
    assert [r["id"] for r in receiver.received] == ids[:3] + ids[:1]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 4 and endpoint.backoff_until > timezone.now()
    assert delivery.deliver_due(5) == 0


def test_an_endpoint_that_answers_again_gets_its_backlog_oldest_first(local_receivers, breaker, make_event):
    receiver = local_receivers(status=500)
    endpoint = endpoint_for(receiver.url)
    ids = changes(make_event(), 8)
    delivery.deliver_due(5)
    receiver.status = 200
    end_backoff(endpoint)
    assert delivery.deliver_due(5) == 8  # the probe succeeds: the whole backlog is due at once
    assert [r["id"] for r in receiver.received if r["status"] == 200] == ids
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {WebhookDeliveryStatus.DELIVERED}
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.backoff_until) == (0, None)


def test_a_success_between_failures_keeps_the_breaker_closed(make_event, breaker):
    endpoint = endpoint_for("https://hooks.example/")
    changes(make_event(), 5)
    rows = list(WebhookDelivery.objects.order_by("id"))
    answers = [Answer(500, "HTTP 500"), Answer(500, "HTTP 500"), Answer(200), Answer(500, "HTTP 500"),
               Answer(500, "HTTP 500")]
    delivery.record_answers(list(zip(rows, answers, strict=True)))
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.backoff_until) == (2, None)


def test_redeliver_probes_a_backed_off_endpoint_at_once(local_receivers, breaker, make_event, admin_client):
    receiver = local_receivers(status=500)
    endpoint_for(receiver.url)
    ids = changes(make_event(), 4)
    delivery.deliver_due(5)
    receiver.status = 200
    newest = WebhookDelivery.objects.get(webhook_id=ids[-1])
    admin_client.post("/admin/queues/webhookdelivery/",
                      {"action": "redeliver_selected", "_selected_action": [newest.pk]})
    assert delivery.deliver_due(5) == 4
    assert [r["id"] for r in receiver.received if r["status"] == 200] == ids


def test_a_pass_records_its_answers_in_one_statement(make_event):
    endpoint_for("https://hooks.example/")
    changes(make_event(), 6)
    rows = list(WebhookDelivery.objects.order_by("id"))
    answers = [Answer(200), Answer(204), Answer(500, "HTTP 500"), Answer(None, "timeout"), Answer(200), Answer(503)]
    with CaptureQueriesContext(connection) as queries:
        delivery.record_answers(list(zip(rows, answers, strict=True)))
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "queues_webhookdelivery"')]
    assert len(updates) == 1
    assert list(WebhookDelivery.objects.order_by("id").values_list("status", "last_status_code", "attempts")) == [
        ("delivered", 200, 1), ("delivered", 204, 1), ("pending", 500, 1), ("pending", None, 1),
        ("delivered", 200, 1), ("pending", 503, 1)]


# --- retention and settling ---------------------------------------------------------------------------------

def rows_by_status(event, endpoint: WebhookEndpoint, created_at, *statuses: str) -> list[WebhookDelivery]:
    rows = [WebhookDelivery(endpoint=endpoint, event=event, event_type=WebhookEventType.QUEUE_PAUSED,
                            webhook_id=f"{status}-{created_at.timestamp()}", payload={}, created_at=created_at,
                            status=status) for status in statuses]
    return WebhookDelivery.objects.bulk_create(rows)


def test_retention_deletes_settled_rows_older_than_the_setting_and_nothing_else(make_event, settings):
    settings.QMS_WEBHOOK_RETENTION_DAYS = 7
    event, endpoint = make_event(), endpoint_for("https://hooks.example/")
    now = timezone.now()
    settled = ("delivered", "failed", "cancelled")
    old = rows_by_status(event, endpoint, now - timedelta(days=7, minutes=1), *settled, "pending")
    kept = rows_by_status(event, endpoint, now - timedelta(days=6, hours=23), *settled, "pending")
    assert retention.sweep(now)["pruned"] == 3
    assert set(WebhookDelivery.objects.values_list("id", flat=True)) == {row.id for row in kept} | {old[-1].id}


def test_retention_deletes_in_bounded_batches(make_event, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)
    monkeypatch.setattr(retention, "DELETE_BATCHES", 2)
    event, endpoint = make_event(), endpoint_for("https://hooks.example/")
    created = timezone.now() - timedelta(days=30)
    for offset in range(5):
        rows_by_status(event, endpoint, created + timedelta(seconds=offset), "delivered")
    assert retention.prune(timezone.now()) == 4
    assert retention.prune(timezone.now()) == 1


def test_deactivating_an_endpoint_cancels_its_pending_rows(local_receivers, admin_user, make_event):
    receiver = local_receivers()
    endpoint, other = endpoint_for(receiver.url), endpoint_for(receiver.url.replace("/hooks/", "/other/"))
    event = make_event()
    delivered = rows_by_status(event, endpoint, timezone.now(), "delivered")
    changes(event, 2)
    client = APIClient()
    client.force_authenticate(admin_user)
    assert client.patch(f"/api/webhooks/endpoints/{endpoint.id}/", {"active": False}, format="json").status_code == 200
    pending_then = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(pk=delivered[0].pk)
    assert list(pending_then.values_list("status", flat=True)) == ["cancelled", "cancelled"]
    assert WebhookDelivery.objects.get(pk=delivered[0].pk).status == "delivered"
    assert delivery.deliver_due(5) == 2  # the other endpoint's
    assert {r["id"] for r in receiver.received} == set(
        WebhookDelivery.objects.filter(endpoint=other).values_list("webhook_id", flat=True))


def test_the_sweep_cancels_rows_written_for_an_endpoint_deactivated_meanwhile_and_drops_orphans(make_event):
    endpoint = endpoint_for("https://hooks.example/")
    event = make_event()
    outbox.subscriptions.all()  # the tick's copy, taken while the endpoint is active...
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)  # ...deactivated without a signal
    outbox.queue_changed(event, WebhookEventType.QUEUE_PAUSED)  # ...and written from the copy
    orphan = rows_by_status(event, endpoint, timezone.now(), "pending")[0]
    WebhookDelivery.objects.filter(pk=orphan.pk).update(endpoint_id=endpoint.pk + 1000)  # its endpoint is gone
    assert retention.sweep() == {"cancelled": 1, "orphans": 1, "failed": 0, "pruned": 0}
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["cancelled"]


def test_the_sweep_fails_pending_rows_past_their_retry_period(make_event):
    endpoint = endpoint_for("https://hooks.example/")
    changes(make_event(), 2)
    late, in_time = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=late.pk).update(retry_until=timezone.now() - timedelta(seconds=1))
    assert retention.sweep()["failed"] == 1
    assert dict(WebhookDelivery.objects.values_list("id", "status")) == {late.id: "failed", in_time.id: "pending"}
    assert endpoint.deliveries.count() == 2


# --- the outbox --------------------------------------------------------------------------------------------

def test_a_tick_writes_one_issued_row_per_admission_and_endpoint(store, make_event, make_user):
    endpoints = [endpoint_for("https://a.example/"), endpoint_for("https://b.example/",
                                                                  event_types=["admission.issued"])]
    endpoint_for("https://c.example/", event_types=["queue.paused"])  # not listening to admissions
    event = make_event(admit_per_minute=60_000, paused=True)
    queue_fans(event, make_user, 3)
    event.paused = False
    event.save()
    WebhookDelivery.objects.all().delete()  # the resume's
    assert len(admission.tick(event).admitted) == 3
    rows = WebhookDelivery.objects.filter(event_type=WebhookEventType.ADMISSION_ISSUED)
    assert sorted(rows.values_list("endpoint_id", flat=True)) == sorted([e.id for e in endpoints] * 3)
    jtis = set(Admission.objects.values_list("jti", flat=True))
    assert {row.payload["jti"] for row in rows} == jtis
    assert len({row.webhook_id for row in rows}) == 3  # one id per admission, the same for both endpoints


def test_the_issued_rows_of_a_tick_run_twice_are_written_once(store, make_event, make_user):
    endpoint_for("https://a.example/")
    event = make_event(admit_per_minute=60_000)
    queue_fans(event, make_user, 2)
    rows = list(Admission.objects.filter(event=event))
    before = WebhookDelivery.objects.filter(event_type=WebhookEventType.ADMISSION_ISSUED).count()
    assert outbox.admissions_issued(event, rows) == len(rows)  # attempted again...
    assert WebhookDelivery.objects.filter(event_type=WebhookEventType.ADMISSION_ISSUED).count() == before == 2


def test_a_tick_whose_ledger_write_fails_writes_no_outbox_row(store, make_event, make_user, django_user_model):
    endpoint_for("https://a.example/")
    event = make_event(admit_per_minute=60_000, paused=True)
    fans = queue_fans(event, make_user, 2)
    operations.perform("resume", event)
    WebhookDelivery.objects.all().delete()
    django_user_model.objects.filter(pk=fans[1].pk).delete()  # its ledger row breaks the tick's insert
    with pytest.raises(IntegrityError):
        admission.tick(event)
    assert not Admission.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_a_rolled_back_redeem_or_release_writes_no_outbox_row(store, make_event, make_user):
    endpoint_for("https://a.example/")
    event = make_event(admit_per_minute=60_000)
    queue_fans(event, make_user, 1)
    row = Admission.objects.get(event=event)
    WebhookDelivery.objects.all().delete()
    for change in (lambda: admission.verify(row.token, redeem=True), lambda: admission.release(row.token)):
        with pytest.raises(RuntimeError), transaction.atomic():
            change()
            assert WebhookDelivery.objects.count() == 1  # written, inside the change's transaction...
            raise RuntimeError("the change fails after the outbox write")
        assert not WebhookDelivery.objects.exists()  # ...and gone with it
    row.refresh_from_db()
    assert (row.redeemed_at, row.released_at) == (None, None)
    admission.verify(row.token, redeem=True)
    admission.release(row.token)
    assert sorted(WebhookDelivery.objects.values_list("event_type", flat=True)) == [
        WebhookEventType.ADMISSION_REDEEMED, WebhookEventType.ADMISSION_RELEASED]


def types_written() -> list[str]:
    return list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))


def test_operations_write_paused_resumed_drained_undrained_and_reset(store, make_event):
    endpoint_for("https://a.example/")
    event = make_event()
    for name in ("pause", "resume", "drain", "undrain", "reset"):
        operations.perform(name, event)
    assert types_written() == ["queue.paused", "queue.resumed", "queue.drained", "queue.undrained", "queue.reset"]
    assert WebhookDelivery.objects.get(event_type="queue.reset").payload["dropped"] == 0


def test_a_pause_through_the_events_api_is_reported_too(admin_user, make_event):
    endpoint_for("https://a.example/", all_events=False).events.add(event := make_event())
    client = APIClient()
    client.force_authenticate(admin_user)
    assert client.patch(f"/api/events/{event.id}/", {"paused": True}, format="json").status_code == 200
    assert client.patch(f"/api/events/{event.id}/", {"name": "renamed"}, format="json").status_code == 200
    assert types_written() == ["queue.paused"]


def test_an_endpoint_hears_only_its_events(make_event):
    chosen, other = make_event(), make_event()
    endpoint_for("https://a.example/", all_events=False).events.add(chosen)
    operations.perform("pause", other)
    operations.perform("pause", chosen)
    assert list(WebhookDelivery.objects.values_list("event_id", flat=True)) == [chosen.id]


def test_the_threshold_is_reported_on_crossing_with_hysteresis(make_event):
    endpoint_for("https://a.example/", threshold_waiting=100, threshold_hysteresis=20,
                 event_types=["queue.threshold"])
    event = make_event()
    for waiting in (50, 100, 150, 90, 81, 100, 79, 95, 80, 79, 120):
        outbox.notice_waiting(event, waiting)
    rows = WebhookDelivery.objects.order_by("id")
    assert [(row.payload["direction"], row.payload["waiting"]) for row in rows] == [
        ("above", 100), ("below", 79), ("above", 120)]


def test_a_threshold_crossing_is_reported_once_across_processes(make_event):
    endpoint_for("https://a.example/", threshold_waiting=10, event_types=["queue.threshold"])
    event = make_event()
    outbox.notice_waiting(event, 12)
    outbox.forget_process_state()  # another process, which has not seen it
    outbox.notice_waiting(event, 13)
    assert WebhookDelivery.objects.count() == 1


def test_the_opening_is_reported_once_by_the_first_tick_that_sees_it(store, make_event):
    endpoint_for("https://a.example/", event_types=["queue.opened"])
    event = make_event(sale_starts_at=timezone.now() + timedelta(seconds=60))
    admission.tick(event)
    assert not WebhookDelivery.objects.exists()
    event.sale_starts_at = timezone.now() - timedelta(seconds=1)
    event.save()
    admission.tick(event)
    admission.tick(event)
    outbox.forget_process_state()  # another worker process
    admission.tick(event)
    assert types_written() == ["queue.opened"]


def test_a_sale_opened_long_before_is_not_announced(make_event):
    endpoint_for("https://a.example/", event_types=["queue.opened"])
    outbox.notice_opening(make_event(sale_starts_at=timezone.now() - timedelta(hours=2)), timezone.now())
    assert not WebhookDelivery.objects.exists()


def test_expired_admissions_are_reported_once_by_the_sweep(store, make_event, make_user):
    endpoint_for("https://a.example/", event_types=["admission.expired"])
    event = make_event(admit_per_minute=60_000)
    queue_fans(event, make_user, 3)
    expired, released, live = Admission.objects.filter(event=event).order_by("id")
    admission.release(released.token)
    Admission.objects.filter(pk__in=[expired.pk, released.pk]).update(expires_at=timezone.now())
    outbox.sweep_expired()
    outbox.sweep_expired()
    rows = WebhookDelivery.objects.all()
    assert [row.payload["jti"] for row in rows] == [expired.jti]
    assert live.jti not in [row.payload["jti"] for row in rows]
