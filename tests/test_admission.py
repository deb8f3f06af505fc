"""The queue service over both stores: joins, order, capacity, ticks run twice, crash recovery."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from queues import admission
from queues.models import Admission
from tests.fans import make_fans
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return run


def tick_until_drained(event, max_ticks: int = 200) -> list[Admission]:
    admitted = []
    for _ in range(max_ticks):
        event.refresh_from_db()
        result = admission.tick(event)
        admitted += result.admitted
        if result.progress and result.progress.waiting == 0:
            break
    return admitted


def test_thousand_concurrent_joins_make_thousand_tickets_admitted_in_ticket_order(store, make_event):
    event = make_event(paused=True, admit_per_minute=60000, max_active=5000)
    fans = make_fans(1000)
    # Everyone once, and the first 20 fans four more times each, all at once from 16 threads.
    attempts = fans + fans[:20] * 4
    random.Random(7).shuffle(attempts)
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(in_thread(lambda fan: (fan.id, admission.join(event, fan))), attempts))
    tickets = {}
    for user_id, status in statuses:
        assert tickets.setdefault(user_id, status.ticket) == status.ticket  # a fan keeps the first ticket
    assert len(tickets) == 1000 and len(set(tickets.values())) == 1000
    assert store.snapshot(event.id).joined_total == 1000

    event.paused = False
    event.save()
    admitted = tick_until_drained(event)
    assert [row.ticket for row in admitted] == sorted(tickets.values())
    assert Admission.objects.filter(event=event).count() == 1000
    assert {row.user_id: row.ticket for row in admitted} == tickets


def test_never_more_than_max_active_and_a_release_lets_the_next_in(store, make_event):
    event = make_event(max_active=5, admit_per_minute=60000, paused=True)
    fans = make_fans(12)
    for fan in fans:
        admission.join(event, fan)
    event.paused = False
    event.save()
    first = tick_until_drained(event, max_ticks=3)
    assert [row.user_id for row in first] == [fan.id for fan in fans[:5]]
    assert admission.tick(event).admitted == []
    assert admission.live_admissions(event) == 5

    admission.release(first[0].token)
    after_release = admission.tick(event).admitted
    assert [row.user_id for row in after_release] == [fans[5].id]
    assert admission.live_admissions(event) == 5


def test_expired_admissions_free_their_slot(store, make_event):
    event = make_event(max_active=1, admit_per_minute=60000)
    one, two = make_fans(2)
    admission.join(event, one)
    admission.join(event, two)
    admission.tick(event)
    Admission.objects.filter(user=one).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert [row.user_id for row in admission.tick(event).admitted] == [two.id]


def test_admission_is_smooth_at_the_configured_rate(store, make_event):
    event = make_event(admit_per_minute=120, paused=True)  # 2 per second, burst of one tick's worth x2
    for fan in make_fans(30):
        admission.join(event, fan)
    event.paused = False
    event.save()
    assert len(admission.tick(event).admitted) == 4  # the bucket starts full: 2 s worth at most
    assert len(admission.tick(event).admitted) == 0  # no budget a moment later


def test_paused_event_queues_joins_and_admits_nobody(store, make_event):
    event = make_event(paused=True)
    fan = make_fans(1)[0]
    status = admission.join(event, fan)
    assert (status.state, status.position, status.paused) == ("waiting", 1, True)
    result = admission.tick(event)
    assert result.admitted == [] and result.progress.paused is True


def test_first_in_line_with_room_is_admitted_on_join(store, make_event):
    event = make_event()
    fan = make_fans(1)[0]
    status = admission.join(event, fan)
    assert status.state == "admitted"
    assert status.admission.user_id == fan.id


def test_queue_switched_off_admits_on_join_up_to_max_active(store, make_event):
    event = make_event(queue_enabled=False, max_active=3, admit_per_minute=1,
                       sale_starts_at=timezone.now() + timedelta(hours=1))
    states = [admission.join(event, fan).state for fan in make_fans(5)]
    assert states == ["admitted"] * 3 + ["waiting"] * 2


def test_admitted_fan_asking_again_gets_the_same_token(store, make_event):
    event = make_event()
    fan = make_fans(1)[0]
    first = admission.join(event, fan)
    again = admission.join(event, fan)
    status = admission.status(event, fan)
    assert first.admission.token == again.admission.token == status.admission.token
    assert Admission.objects.filter(user=fan).count() == 1


def test_fan_whose_admission_expired_queues_again_with_a_new_ticket(store, make_event):
    event = make_event()
    fan = make_fans(1)[0]
    first = admission.join(event, fan)
    Admission.objects.filter(user=fan).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert admission.status(event, fan) is None
    again = admission.join(event, fan)
    assert again.ticket > first.ticket


def test_two_ticks_at_once_admit_everyone_exactly_once(store, make_event):
    event = make_event(admit_per_minute=60000, max_active=10000, paused=True)
    fans = make_fans(300)
    for fan in fans:
        admission.join(event, fan)
    event.paused = False
    event.save()

    def ticker(_) -> list[int]:
        return [row.user_id for _ in range(60) for row in admission.tick(event).admitted]

    admitted = [user_id for ticked in run_in_threads(ticker, 4) for user_id in ticked]
    tick_until_drained(event)
    counts = Counter(admitted)
    assert all(count == 1 for count in counts.values())
    assert Admission.objects.filter(event=event).count() == 300
    assert set(Admission.objects.filter(event=event).values_list("user_id", flat=True)) == {f.id for f in fans}


def test_tick_that_died_before_writing_the_ledger_loses_nobody(store, make_event):
    event = make_event(admit_per_minute=60000)
    fans = make_fans(3)
    for fan in fans:
        store.join(event.id, fan.id, prequeue_key=None, now=1.0)
    # A worker popped two fans, then died before the ledger commit.
    store.admit_batch(event.id, limit=2, rate_per_second=100, burst=100, now=2.0, abandon_before=0)
    admitted = tick_until_drained(event)
    assert [row.user_id for row in admitted] == [fan.id for fan in fans]
    assert Admission.objects.filter(event=event).count() == 3


def test_tick_that_died_after_writing_the_ledger_issues_no_second_token(store, make_event):
    event = make_event(admit_per_minute=60000, max_active=1)
    fan, other = make_fans(2)
    store.join(event.id, fan.id, prequeue_key=None, now=1.0)
    store.join(event.id, other.id, prequeue_key=None, now=1.0)
    popped = store.admit_batch(event.id, limit=1, rate_per_second=100, burst=100, now=2.0, abandon_before=0)
    Admission.objects.create(event=event, user=fan, ticket=popped.admitted[0].ticket,
                             place_id=popped.admitted[0].place_id, jti="dead-worker",
                             token="t", issued_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=5))
    result = admission.tick(event)
    assert [row.jti for row in result.admitted] == ["dead-worker"]  # re-sent, not re-issued
    assert Admission.objects.filter(user=fan).count() == 1
    assert admission.status(event, fan).state == "admitted"
    assert admission.status(event, other).position == 1  # max_active=1 is held by the recovered admission


def test_ledger_failure_puts_fans_back_in_place(store, make_event):
    event = make_event(admit_per_minute=60000)
    fans = make_fans(2)
    for fan in fans:
        store.join(event.id, fan.id, prequeue_key=None, now=1.0)
    popped = store.admit_batch(event.id, limit=2, rate_per_second=100, burst=100, now=2.0, abandon_before=0)
    event.token_ttl_seconds = None  # the ledger insert fails: NOT NULL expires_at cannot be computed
    with pytest.raises(TypeError):
        admission._issue(event, popped.admitted)
    assert [admission.status(event, fan).position for fan in fans] == [1, 2]
    assert Admission.objects.count() == 0


def test_leave_gives_up_the_place(store, make_event):
    event = make_event(paused=True)
    one, two = make_fans(2)
    admission.join(event, one)
    admission.join(event, two)
    assert admission.leave(event, one) is True
    assert admission.status(event, one) is None
    assert admission.status(event, two).position == 1
    assert admission.leave(event, one) is False


def test_status_reports_place_ahead_waiting_and_eta(store, make_event):
    event = make_event(paused=True, admit_per_minute=60)
    fans = make_fans(6)
    for fan in fans:
        admission.join(event, fan)
    status = admission.status(event, fans[4])
    assert (status.state, status.position, status.ahead, status.waiting) == ("waiting", 5, 4, 6)
    # The first tick's full bucket (two ticks' worth) lets 2 in; then the configured 1 per second.
    assert status.eta_seconds == 3


def test_prequeue_hides_order_until_the_sale_opens(store, make_event):
    event = make_event(sale_starts_at=timezone.now() + timedelta(hours=1))
    fan = make_fans(1)[0]
    status = admission.join(event, fan)
    assert (status.state, status.position, status.eta_seconds) == ("prequeue", None, None)
    assert admission.tick(event).admitted == []


def test_eta_told_just_after_the_opening_matches_the_wait(store, make_event, monkeypatch):
    # At 6 admissions a minute a fan at #3 was told "about 2 minutes" and admitted after 28 s: the observed
    # rate starts at 0 and the ETA took its first, tiny values for the truth.
    clock = [1_000_000.0]
    monkeypatch.setattr(admission, "_now", lambda: clock[0])  # the service's clock: ticks at explicit times
    event = make_event(admit_per_minute=6)
    first, *fans = make_fans(4)
    assert admission.join(event, first).state == "admitted"  # the opening: nobody ahead
    told = {}
    for fan in fans:
        clock[0] += 1.0
        admission.tick(event, publish=False)
        told[fan.id] = (clock[0], admission.join(event, fan).eta_seconds)
    waited = {}
    while len(waited) < len(fans) and clock[0] < 1_000_000.0 + 600:
        clock[0] += 1.0
        for row in admission.tick(event, publish=False).admitted:
            waited[row.user_id] = clock[0] - told[row.user_id][0]
    for fan in fans:
        eta = told[fan.id][1]
        assert waited[fan.id] / 1.5 <= eta <= waited[fan.id] * 1.5, (eta, waited[fan.id])
