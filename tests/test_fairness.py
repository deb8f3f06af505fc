"""Fairness: the pre-queue is a uniform shuffle drawn at the opening; after it, first come first served."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from events.models import Event
from queues import admission

pytestmark = pytest.mark.django_db

FANS = 4
TRIALS = 800
# chi-square, (FANS-1)^2 = 9 degrees of freedom, p = 0.001
CHI_SQUARE_CRITICAL = 27.88


def chi_square(table: list[list[int]], expected: float) -> float:
    return sum((cell - expected) ** 2 / expected for row in table for cell in row)


def test_prequeue_order_is_a_uniform_shuffle(store, make_event, monkeypatch):
    monkeypatch.setattr(admission, "prequeue_rng", random.Random(20261125))
    users = get_user_model()
    fans = [users.objects.create(username=f"pre{i}") for i in range(FANS)]
    event = make_event(sale_starts_at=timezone.now() + timedelta(hours=1))
    placed_at = [[0] * FANS for _ in range(FANS)]  # [join order][position after opening]
    for _ in range(TRIALS):
        store.reset(event.id)
        Event.objects.filter(pk=event.pk).update(sale_starts_at=timezone.now() + timedelta(hours=1))
        event.refresh_from_db()
        for fan in fans:
            assert admission.join(event, fan).state == "prequeue"
        event.sale_starts_at = timezone.now() - timedelta(seconds=1)
        for joined, fan in enumerate(fans):
            placed_at[joined][admission.status(event, fan).position - 1] += 1
    statistic = chi_square(placed_at, TRIALS / FANS)
    assert statistic < CHI_SQUARE_CRITICAL, placed_at
    # The first joiner must not keep the front: a non-shuffle gives statistic = 3 * TRIALS.
    assert placed_at[0][0] < TRIALS / 2


def test_a_biased_order_fails_the_uniformity_bound():
    """The bound catches join-order bias: the test above can fail."""
    biased = [[TRIALS // 2 if pos == joined else TRIALS // 6 for pos in range(FANS)] for joined in range(FANS)]
    assert chi_square(biased, TRIALS / FANS) > CHI_SQUARE_CRITICAL


def test_after_the_opening_joiners_queue_behind_the_prequeue_in_arrival_order(store, make_event):
    users = get_user_model()
    early = [users.objects.create(username=f"early{i}") for i in range(5)]
    late = [users.objects.create(username=f"late{i}") for i in range(5)]
    event = make_event(sale_starts_at=timezone.now() + timedelta(hours=1), paused=True)
    for fan in early:
        admission.join(event, fan)
    Event.objects.filter(pk=event.pk).update(sale_starts_at=timezone.now() - timedelta(seconds=1))
    event.refresh_from_db()
    for fan in late:
        admission.join(event, fan)
    positions = {fan.id: admission.status(event, fan).position for fan in early + late}
    assert sorted(positions[fan.id] for fan in early) == [1, 2, 3, 4, 5]
    assert [positions[fan.id] for fan in late] == [6, 7, 8, 9, 10]
