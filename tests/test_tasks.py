"""The Celery tasks, fast: a tick for an event that is gone, beat's fan-out with its expiry, a stale tick dropped.

Tasks run for real: called in-process (as a worker calls them), and published to
Celery's in-memory broker (the embedded settings' `memory://`), from which a
real worker thread or the test reads them back.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.utils import timezone

from events.models import Event
from qms_project.celery import app
from queues import admission, tasks
from queues.models import Admission

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(settings):
    """Celery's in-memory broker, emptied before and after: what was published, in order."""
    # The embedded settings' broker already; said again so a shell with QMS_REDIS_URL set publishes nowhere real.
    previous, app.conf.broker_url = app.conf.broker_url, "memory://"
    queue = settings.CELERY_TASK_DEFAULT_QUEUE

    def drain() -> list:
        messages = []
        with app.connection_for_read() as connection, connection.SimpleQueue(queue) as simple:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    return messages
                message.ack()
                messages.append(message)

    drain()
    yield drain
    drain()
    app.conf.broker_url = previous


def waiting_fans(event, count: int) -> list:
    users = get_user_model()
    fans = [users.objects.create(username=f"task{event.id}-{i}") for i in range(count)]
    for fan in fans:
        admission.join(event, fan)
    return fans


def test_a_tick_for_an_event_that_no_longer_exists_does_nothing(store, make_event):
    event = make_event()
    event_id = event.id
    event.delete()
    assert tasks.tick_event(event_id) == 0  # no exception: beat may still send ids of deleted events


def test_a_tick_task_admits_like_a_tick(store, make_event):
    event = make_event(paused=True, admit_per_minute=60_000)
    fans = waiting_fans(event, 3)
    event.paused = False
    event.save()
    assert tasks.tick_event.apply(args=(event.id,)).get() == 3
    assert set(Admission.objects.filter(event=event).values_list("user_id", flat=True)) == {f.id for f in fans}


def test_beat_sends_one_tick_per_event_each_expiring_before_the_next_beat(store, make_event, broker):
    events = [make_event(), make_event(paused=True), make_event()]
    sent_at = timezone.now()
    assert tasks.schedule_ticks.apply().get() == 3
    messages = broker()
    assert sorted(message.payload[0][0] for message in messages) == sorted(event.id for event in events)
    for message in messages:
        assert message.headers["task"] == "queues.tasks.tick_event"
        expires = datetime.fromisoformat(message.headers["expires"])
        assert 0 < (expires - sent_at).total_seconds() <= tasks.TICK_EXPIRES_SECONDS + 1


def test_a_worker_drops_a_beat_tick_that_expired_in_the_queue(store, make_event, broker):
    """A worker that was busy (or down) must not run a backlog of stale ticks: the next beat sent fresh ones."""
    stale_event = make_event(admit_per_minute=60_000, paused=True)
    waiting_fans(stale_event, 2)
    assert tasks.schedule_ticks.apply().get() == 1
    fresh_event = make_event(admit_per_minute=60_000, paused=True)
    waiting_fans(fresh_event, 2)
    Event.objects.update(paused=False)  # a tick that ran now would admit at either event
    time.sleep(tasks.TICK_EXPIRES_SECONDS + 0.5)  # beat's tick sits in the queue past its expiry
    tasks.tick_event.apply_async((fresh_event.id,))  # queued behind the stale one
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 20
        while Admission.objects.filter(event=fresh_event).count() < 2:
            assert time.monotonic() < deadline, "the worker never ran the fresh tick"
            time.sleep(0.05)
    assert not Admission.objects.filter(event=stale_event).exists()
