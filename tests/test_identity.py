"""An admission's identity survives a store that forgot (a restarted memory store, Redis losing its last
writes): a fan who queues again gets a new place and a new token, never the earlier run's row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queues import admission, tokens
from queues.models import Admission
from queues.protocol import FanState
from queues.store import get_store, reset_store_cache

pytestmark = pytest.mark.django_db


def forget_everything(store) -> None:
    """What a restart of `make run` does to the memory store, or a failover before replication to Redis."""
    if hasattr(store, "client"):  # Redis: every key of this test's prefix
        keys = list(store.client.scan_iter(f"{store.prefix}:*"))
        if keys:
            store.client.delete(*keys)
    reset_store_cache()  # the memory store starts empty, as in a new process; Redis: a new client


def test_a_fan_queued_again_after_the_store_forgot_gets_a_new_token(store, make_event, make_user):
    event = make_event(admit_per_minute=600)
    fan = make_user()
    first = admission.join(event, fan)
    assert first.state == FanState.ADMITTED
    old = first.admission
    Admission.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # a run ago

    forget_everything(store)
    event.paused = True
    event.save(update_fields=["paused"])
    again = admission.join(event, fan)
    assert (again.state, again.ticket) == (FanState.WAITING, first.ticket)  # the same ticket number again

    event.paused = False
    event.save(update_fields=["paused"])
    result = admission.tick(event, publish=False)
    assert [row.user_id for row in result.admitted] == [fan.id]
    new = result.admitted[0]
    assert new.jti != old.jti and new.is_live()
    assert tokens.decode(new.token, event_id=event.id)["jti"] == new.jti
    status = admission.status(event, fan)
    assert (status.state, status.admission.jti) == (FanState.ADMITTED, new.jti)
    assert Admission.objects.filter(event=event, user=fan).count() == 2


def test_a_live_admission_of_a_forgotten_store_is_not_handed_to_the_new_place(store, make_event, make_user):
    event = make_event(admit_per_minute=600)
    fan = make_user()
    old = admission.join(event, fan).admission
    forget_everything(store)
    assert get_store().place(event.id, fan.id) is None
    status = admission.join(event, fan)  # wide open: admitted at once, with a token of the new place
    assert status.state == FanState.ADMITTED and status.admission.jti != old.jti
