"""Ticks that really compete: a rate budget smaller than the queue, and a tick that outlives its lease.

Both stores. The promise (DESIGN, "safe to run twice"): concurrent ticks share
one rate budget and one lease; no fan is admitted twice, none is lost, and no
round of ticks admits more than the budget allows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from queues import admission
from queues.models import Admission
from tests.fans import make_fans
from tests.threads import DEADLINE_SECONDS, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

TICKERS = 4
RATE_PER_SECOND = 60.0  # admit_per_minute=3600
TICK_SECONDS = 0.25  # burst = 2 x rate x tick = 30 fans: a fifth of the queue
QUEUE = 150


def test_concurrent_ticks_share_one_rate_budget_and_admit_each_fan_once(store, make_event, settings):
    settings.QMS_TICK_SECONDS = TICK_SECONDS
    burst = 2 * RATE_PER_SECOND * TICK_SECONDS
    event = make_event(admit_per_minute=int(RATE_PER_SECOND * 60), max_active=10_000, paused=True)
    fans = make_fans(QUEUE, "rival")
    for fan in fans:
        admission.join(event, fan)
    event.paused = False
    event.save()

    admitted: list[int] = []
    rounds = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(admitted) < QUEUE:
        assert time.monotonic() < deadline, f"only {len(admitted)} of {QUEUE} admitted"
        time.sleep(burst / RATE_PER_SECOND)  # the bucket refills to a full burst, no more
        started = time.monotonic()
        # Each of the four waits for the lease, so every one of them runs a tick in this round.
        results = run_in_threads(lambda _: admission.tick(event, lease_wait=5.0), TICKERS)
        elapsed = time.monotonic() - started
        assert all(result.ran for result in results)
        in_round = [row.user_id for result in results for row in result.admitted]
        # A full bucket plus what trickled in while the round ran; ticks that each had their own
        # budget would let four bursts through.
        assert len(in_round) <= burst + RATE_PER_SECOND * elapsed + 1
        admitted += in_round
        rounds += 1

    assert rounds > 2  # the queue took several rounds: the budget, not the queue, was the limit
    counts = Counter(admitted)
    assert set(counts) == {fan.id for fan in fans}
    assert max(counts.values()) == 1, "a fan was admitted (told) twice"
    ledger = list(Admission.objects.filter(event=event).values_list("user_id", flat=True))
    assert sorted(ledger) == sorted(fan.id for fan in fans)  # one row each, nobody missing


def test_a_tick_that_outlives_its_lease_admits_nobody_twice(store, make_event, settings):
    """A tick stuck past its lease (here: its ledger insert waits on a table lock) lets another tick run.

    The second tick finds the first one's popped fans without ledger rows and takes them over; when
    both inserts go through, each fan still has one admission and one token.
    """
    if connection.vendor != "postgresql":
        pytest.skip("holds a PostgreSQL table lock to stall the first tick's ledger insert")
    settings.QMS_TICK_LEASE_SECONDS = 0.3
    event = make_event(admit_per_minute=60_000, max_active=10_000, paused=True)
    fans = make_fans(5, "stuck")
    for fan in fans:
        admission.join(event, fan)
    event.paused = False
    event.save()

    locked, unlock = threading.Event(), threading.Event()

    def hold_table_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # Reads go on (EXCLUSIVE allows ACCESS SHARE); the ledger insert waits.
                cursor.execute(f"LOCK TABLE {Admission._meta.db_table} IN EXCLUSIVE MODE")
                locked.set()
                unlock.wait(DEADLINE_SECONDS)
        finally:
            connections.close_all()

    results: dict[str, admission.TickResult] = {}
    errors: list[BaseException] = []

    def ticker(name: str) -> None:
        try:
            results[name] = admission.tick(event)
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    def inserts_waiting() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT%%'")
            return cursor.fetchone()[0]

    def wait_for(predicate, what: str) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.02)

    locker = threading.Thread(target=hold_table_lock, daemon=True)
    first = threading.Thread(target=ticker, args=("first",), daemon=True)
    second = threading.Thread(target=ticker, args=("second",), daemon=True)
    try:
        locker.start()
        assert locked.wait(DEADLINE_SECONDS)
        first.start()
        wait_for(lambda: inserts_waiting() >= 1, "the first tick to reach its ledger insert")
        assert admission.tick(event).ran is False  # while the lease holds, nobody else ticks
        time.sleep(2 * settings.QMS_TICK_LEASE_SECONDS)  # the first tick's lease runs out
        second.start()
        wait_for(lambda: inserts_waiting() >= 2 or "second" in results or errors,
                 "the second tick to run while the first is stuck")
        assert not Admission.objects.filter(event=event).exists()  # both ticks are still stuck on the lock
    finally:
        unlock.set()
        for thread in (locker, first, second):
            if thread.ident is not None:
                thread.join(DEADLINE_SECONDS)
    assert not errors, errors
    assert results["second"].ran, "the second tick did not get the lease the first one outlived"
    assert results["first"].admitted, "the first tick admitted nobody: nothing competed"

    tokens_told: dict[int, set[str]] = {}
    for result in results.values():
        for row in result.admitted:
            tokens_told.setdefault(row.user_id, set()).add(row.jti)
    assert all(len(jtis) == 1 for jtis in tokens_told.values()), f"a fan was sent two tokens: {tokens_told}"
    ledger = Counter(Admission.objects.filter(event=event).values_list("user_id", flat=True))
    assert ledger and max(ledger.values()) == 1, f"a fan has two admissions: {ledger}"
    for fan in fans:  # whatever the ticks left is admitted by the next ones, each once
        for _ in range(20):
            if admission.status(event, fan).state == "admitted":
                break
            admission.tick(event)
        status = admission.status(event, fan)
        assert status.state == "admitted"
        assert {status.admission.jti} >= tokens_told.get(fan.id, set())
    assert Admission.objects.filter(event=event).count() == len(fans)
