"""What a broadcast means for one waiting fan, and when their socket pulls (queues/realtime/place.py).

Plain Python: no socket, no channel layer, no database; the clocks are the test's.
"""

from __future__ import annotations

import pytest

from queues.admission import QueueStatus
from queues.protocol import FanState
from queues.realtime import place
from queues.realtime.place import PlaceTracker


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocks():
    return Clock(), Clock(1_700_000_000.0)  # monotonic, wall


def waiting(ahead: int, served: int = 0) -> QueueStatus:
    return QueueStatus(state=FanState.WAITING, ticket=served + ahead + 1, position=ahead + 1, ahead=ahead,
                       waiting=ahead + 1, served=served)


def prequeue() -> QueueStatus:
    return QueueStatus(state=FanState.PREQUEUE, ticket=1, waiting=1)


def tracker(status: QueueStatus, clocks, jitter: float = 1.0) -> PlaceTracker:
    monotonic, wall = clocks
    return PlaceTracker(status, clock=monotonic, wall_clock=wall, jitter=jitter)


def progress(wall: Clock, *, serving: int, waiting: int, later: float = 1.0, sale_open: bool = True) -> dict:
    """A broadcast decided `later` seconds after now on the wall clock."""
    return {"type": "progress", "serving": serving, "waiting": waiting, "sale_open": sale_open,
            "at": wall.now + later}


def test_a_fan_whose_turn_came_by_the_watermark_pulls(clocks):
    fan = tracker(waiting(ahead=3, served=10), clocks)
    assert not fan.turn_may_have_come(progress(clocks[1], serving=12, waiting=50))  # still 1 ahead
    assert fan.turn_may_have_come(progress(clocks[1], serving=13, waiting=50))  # nobody ahead any more


def test_a_fan_far_back_does_not_pull_on_an_ordinary_broadcast(clocks):
    fan = tracker(waiting(ahead=100, served=0), clocks)
    assert not fan.turn_may_have_come(progress(clocks[1], serving=5, waiting=200))


def test_a_queue_shorter_than_the_known_place_means_the_place_is_stale(clocks):
    """Fans ahead left (or were skipped): the watermark alone does not show it, the waiting count does."""
    fan = tracker(waiting(ahead=100, served=0), clocks)
    assert fan.turn_may_have_come(progress(clocks[1], serving=5, waiting=40))


def test_a_broadcast_decided_before_the_place_was_read_says_nothing(clocks):
    fan = tracker(waiting(ahead=100, served=0), clocks)
    assert not fan.turn_may_have_come(progress(clocks[1], serving=5, waiting=1, later=-0.5))
    assert not fan.turn_may_have_come(progress(clocks[1], serving=5, waiting=1, later=0.0))


def test_pulls_are_at_most_one_per_check_interval(clocks):
    monotonic, wall = clocks
    fan = tracker(waiting(ahead=0), clocks)
    front = progress(wall, serving=0, waiting=5)
    assert fan.turn_may_have_come(front)
    fan.checked()
    assert not fan.turn_may_have_come(front)
    monotonic.now += place.CHECK_INTERVAL_SECONDS - 0.1
    assert not fan.turn_may_have_come(front)
    monotonic.now += 0.2
    assert fan.turn_may_have_come(front)


def test_in_the_prequeue_only_the_opening_makes_the_fan_pull(clocks):
    fan = tracker(prequeue(), clocks)
    assert not fan.turn_may_have_come(progress(clocks[1], serving=0, waiting=10, sale_open=False))
    assert fan.turn_may_have_come(progress(clocks[1], serving=0, waiting=10, sale_open=True))


def test_a_fresh_place_re_anchors_and_says_whether_it_moved(clocks):
    monotonic, wall = clocks
    fan = tracker(waiting(ahead=10, served=0), clocks)
    assert fan.remember(waiting(ahead=10, served=0)) is False
    wall.now += 5
    assert fan.remember(waiting(ahead=4, served=6)) is True
    assert (fan.known_ahead, fan.known_served, fan.place_read_at) == (4, 6, wall.now)
    # Followed from the new anchor: 4 ahead at serving 6, so serving 10 is this fan's turn.
    assert fan.turn_may_have_come(progress(wall, serving=10, waiting=30))


def test_a_socket_that_hears_nothing_for_its_silence_period_is_silent(clocks):
    monotonic, _ = clocks
    fan = tracker(waiting(ahead=10), clocks, jitter=1.2)
    monotonic.now += place.SILENCE_SECONDS * 1.2 - 0.1
    assert not fan.silent()
    monotonic.now += 0.2
    assert fan.silent()
    fan.heard()
    assert not fan.silent()


def test_silence_periods_are_jittered_between_one_and_one_and_a_half(clocks):
    monotonic, wall = clocks
    shares = {PlaceTracker(waiting(ahead=1), clock=monotonic, wall_clock=wall).silence_after for _ in range(50)}
    assert len(shares) > 1 and all(1.0 <= share <= 1.5 for share in shares)
