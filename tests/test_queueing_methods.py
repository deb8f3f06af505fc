"""Operator controls: queueing methods (fifo, random, passthrough), the pre-queue window, the health gate."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from events.models import Event
from queues import admission
from queues.refusals import QueueClosed
from tests.fans import make_fans
from tests.sites import ProtectedSite

pytestmark = pytest.mark.django_db

FANS = 300
QUINTILES = 5
CHI_SQUARE_CRITICAL = 39.25  # (5-1)^2 = 16 degrees of freedom, p = 0.001


def queue_up(event, fans) -> dict[int, int]:
    """Everyone joins a paused event; returns user -> ticket."""
    return {fan.id: admission.join(event, fan).ticket for fan in fans}


def admit_all(event) -> list[int]:
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    order = []
    for _ in range(50):
        result = admission.tick(event)
        order += [row.user_id for row in result.admitted]
        if result.progress.waiting == 0:
            break
    return order


def test_fifo_admits_in_exact_ticket_order(store, make_event):
    event = make_event(paused=True, admit_per_minute=60000, max_active=10000, queueing_method="fifo")
    tickets = queue_up(event, make_fans(FANS))
    order = admit_all(event)
    assert [tickets[user] for user in order] == sorted(tickets.values())


def admitted_in_batches(event, tickets: dict[int, int], batch_size: int = 10) -> list[list[int]]:
    """Tickets admitted by one "admit 10 now" after another (within a batch all are admitted at once)."""
    batches = []
    while len(batches) * batch_size < len(tickets):
        batches.append([tickets[row.user_id] for row in admission.tick(event, extra=batch_size).admitted])
    return batches


def order_statistic(batches: list[list[int]]) -> float:
    """Chi-square of [quintile in line][quintile of admission]: where a fan stood against when they got in."""
    table = [[0] * QUINTILES for _ in range(QUINTILES)]
    for index, batch in enumerate(batches):
        for ticket in batch:
            table[(ticket - 1) * QUINTILES // FANS][index * QUINTILES // len(batches)] += 1
    expected = FANS / QUINTILES**2
    return sum((cell - expected) ** 2 / expected for row in table for cell in row)


def test_random_admits_everyone_once_in_no_particular_order(store, make_event):
    event = make_event(paused=True, admit_per_minute=60000, max_active=10000, queueing_method="random",
                       draw_seed=random.Random(1125).randbytes(32).hex())  # the draws are the same every run
    tickets = queue_up(event, make_fans(FANS))
    batches = admitted_in_batches(event, tickets)
    drawn = [ticket for batch in batches for ticket in batch]
    assert sorted(drawn) == sorted(tickets.values())  # every fan exactly once
    assert batches[0] != sorted(tickets.values())[:10]  # not FIFO
    # Where a fan stood in line says nothing about when they were drawn.
    assert order_statistic(batches) < CHI_SQUARE_CRITICAL, batches


def test_the_random_bound_rejects_what_fifo_really_does(store, make_event):
    """The bound can fail: the same batches taken from a `fifo` queue are far past it."""
    event = make_event(paused=True, admit_per_minute=60000, max_active=10000, queueing_method="fifo")
    tickets = queue_up(event, make_fans(FANS))
    batches = admitted_in_batches(event, tickets)
    assert [ticket for batch in batches for ticket in batch] == sorted(tickets.values())
    assert order_statistic(batches) > CHI_SQUARE_CRITICAL


def test_passthrough_admits_on_join_up_to_max_active(store, make_event):
    event = make_event(queueing_method="passthrough", admit_per_minute=1, max_active=50,
                       sale_starts_at=timezone.now() + timedelta(hours=1))  # no pre-queue either
    states = [admission.join(event, fan).state for fan in make_fans(80)]
    assert states == ["admitted"] * 50 + ["waiting"] * 30
    first = admission.status(event, get_user_model().objects.get(username="crowd0")).admission
    admission.release(first.token)
    assert len(admission.tick(event).admitted) == 1  # capacity, not the rate, is the limit


def test_prequeue_window_refuses_joins_before_it_opens(store, make_event):
    fan = make_fans(1)[0]
    event = make_event(prequeue_opens_at=timezone.now() + timedelta(minutes=10),
                       sale_starts_at=timezone.now() + timedelta(minutes=20))
    with pytest.raises(QueueClosed) as refused:
        admission.join(event, fan)
    assert refused.value.code == "queue_not_open"
    Event.objects.filter(pk=event.pk).update(prequeue_opens_at=timezone.now() - timedelta(seconds=1))
    event.refresh_from_db()
    assert admission.join(event, fan).state == "prequeue"


def test_prequeue_window_refusal_over_the_api(store, make_event, make_user):
    from rest_framework.test import APIClient

    event = make_event(prequeue_opens_at=timezone.now() + timedelta(minutes=10),
                       sale_starts_at=timezone.now() + timedelta(minutes=20))
    client = APIClient()
    client.force_authenticate(make_user())
    response = client.post(f"/api/events/{event.id}/queue/")
    assert (response.status_code, response.json()["code"]) == (409, "queue_not_open")
    assert response.json()["opens_at"] == event.prequeue_opens_at.isoformat()  # when to try again


@pytest.fixture
def protected_site():
    site = ProtectedSite()
    yield site
    site.close()


def test_health_gate_pauses_admission_while_the_site_fails(store, make_event, protected_site, settings):
    settings.QMS_HEALTH_POLL_SECONDS = 0  # poll at every tick
    event = make_event(paused=True, admit_per_minute=60000, health_check_url=protected_site.url)
    queue_up(event, make_fans(5))
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    protected_site.status = 503
    busy = admission.tick(event)
    assert busy.admitted == []
    assert (busy.progress.paused, busy.progress.paused_reason) == (True, "site_busy")
    protected_site.status = 200
    recovered = admission.tick(event)
    assert len(recovered.admitted) == 5 and recovered.progress.paused is False


def test_health_gate_polls_at_most_once_per_interval(store, make_event, protected_site, settings):
    settings.QMS_HEALTH_POLL_SECONDS = 60
    event = make_event(paused=True, health_check_url=protected_site.url)
    hits = []
    original = protected_site.server.RequestHandlerClass.do_GET

    def counting(handler):
        hits.append(1)
        original(handler)

    protected_site.server.RequestHandlerClass.do_GET = counting
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    for _ in range(5):
        admission.tick(event)
    assert len(hits) == 1
