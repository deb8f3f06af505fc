"""What one waiting fan knows of their place, and when their socket should ask the engine again.

The socket hears one `progress` broadcast per tick for everybody; from it, and the place last read exactly,
this decides whether this fan's turn may have come (then the socket pulls its status: the `admitted` push
may have been lost) and whether the socket has heard nothing for too long (its server lost the channel
layer: it pulls instead of waiting). Plain Python: no socket, no channel layer (tests/test_place_tracker.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ..admission import QueueStatus
from ..protocol import FanState

CHECK_INTERVAL_SECONDS = 2.0  # at most one status pull per socket this often
SILENCE_SECONDS = 5.0  # no broadcast for this long (one is due every tick): pull the status instead


class PlaceTracker:
    """The place as last known exactly (from `queued` or a status pull), followed with the broadcasts."""

    def __init__(self, status: QueueStatus, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, jitter: float | None = None):
        self.clock = clock  # intervals: checks and silence
        self.wall_clock = wall_clock  # compared with a broadcast's `at` (the deciding tick's wall clock)
        # This socket's share of SILENCE_SECONDS, jittered so sockets that connected together do not fall
        # silent (and pull) together.
        self.silence_after = jitter if jitter is not None else random.uniform(1.0, 1.5)
        self.known_ahead: int | None = None
        self.known_served = 0
        self.place_read_at = 0.0
        self.last_check = 0.0
        self.last_heard = clock()
        self.remember(status)

    def remember(self, status: QueueStatus) -> bool:
        """Take a freshly read place as the anchor. True if it differs from what was known (tell the client)."""
        ahead = status.ahead if status.state == FanState.WAITING else None
        moved = ahead != self.known_ahead
        self.known_ahead, self.known_served = ahead, status.served
        self.place_read_at = self.wall_clock()
        return moved

    def heard(self) -> None:
        """A broadcast arrived: the channel layer works."""
        self.last_heard = self.clock()

    def checked(self) -> None:
        """A status pull started (successful or not, the next waits CHECK_INTERVAL_SECONDS)."""
        self.last_check = self.clock()

    def silent(self) -> bool:
        return self.clock() - self.last_heard > SILENCE_SECONDS * self.silence_after

    def turn_may_have_come(self, progress: dict) -> bool:
        """From the broadcast alone: is this fan at the front, or is what we know of the place stale?

        Only fans near the head (or whose place is unknown since the opening) ask, so the pulls cost
        O(admitted per tick), not O(waiting).
        """
        if self.clock() - self.last_check < CHECK_INTERVAL_SECONDS:
            return False
        if progress.get("at", 0.0) <= self.place_read_at:
            # Decided before this fan's place was read (usual during a storm: joins outrun the tick):
            # it says nothing new, and taking its smaller `waiting` for a stale place made every
            # newcomer pull.
            return False
        if self.known_ahead is None:
            return bool(progress.get("sale_open"))  # the pre-queue order was just drawn
        ahead_now = self.known_ahead - (progress["serving"] - self.known_served)
        return ahead_now <= 0 or progress["waiting"] <= ahead_now
