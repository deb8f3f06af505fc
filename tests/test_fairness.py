"""Fairness: the pre-queue is a uniform shuffle (keys derived from the event's draw seed, queues/draw.py); after the
opening, first come first served."""

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


def placements(store, event, fans, trials: int, *, before_opening: bool) -> list[list[int]]:
    """[join order][position after the opening]: how often each joiner ended up at each place, each trial an
    event with a seed of its own (drawn from a seeded generator: the run is the same every time)."""
    seeds = random.Random(20261125)
    placed_at = [[0] * FANS for _ in range(FANS)]
    for _ in range(trials):
        store.reset(event.id)
        starts = timezone.now() + (timedelta(hours=1) if before_opening else -timedelta(seconds=1))
        Event.objects.filter(pk=event.pk).update(sale_starts_at=starts, paused=True,
                                                 draw_seed=seeds.randbytes(32).hex())
        event.refresh_from_db()
        for fan in fans:
            assert admission.join(event, fan).state == ("prequeue" if before_opening else "waiting")
        event.sale_starts_at = timezone.now() - timedelta(seconds=1)
        for joined, fan in enumerate(fans):
            placed_at[joined][admission.status(event, fan).position - 1] += 1
    return placed_at


@pytest.fixture
def fans():
    users = get_user_model()
    return [users.objects.create(username=f"pre{i}") for i in range(FANS)]


def test_prequeue_order_is_a_uniform_shuffle(store, make_event, fans):
    event = make_event()
    placed_at = placements(store, event, fans, TRIALS, before_opening=True)
    statistic = chi_square(placed_at, TRIALS / FANS)
    assert statistic < CHI_SQUARE_CRITICAL, placed_at
    # The first joiner must not keep the front: a non-shuffle gives statistic = 3 * TRIALS.
    assert placed_at[0][0] < TRIALS / 2


def test_the_same_measure_rejects_the_queue_s_own_arrival_order(store, make_event, fans):
    """The bound can fail: fans who join after the opening are served first come first served, and the
    measurement above, run on them, is far past the bound."""
    trials = 40
    placed_at = placements(store, make_event(), fans, trials, before_opening=False)
    assert placed_at == [[trials if pos == joined else 0 for pos in range(FANS)] for joined in range(FANS)]
    assert chi_square(placed_at, trials / FANS) > CHI_SQUARE_CRITICAL


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
