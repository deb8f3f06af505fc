"""The queue store contract: the live queue of each event, behind a few atomic operations.

Backends (`memory.py`, `redis.py`) implement every method as one atomic step
(one Lua script, one round trip, on Redis). Times are epoch seconds (float).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from ..protocol import FanState

# Every backend's tuning, here once (the Redis scripts receive them as arguments).
RATE_TIME_CONSTANT = 30.0  # seconds over which the observed admission rate is smoothed
MAX_SKIPS_PER_ADMIT = 10  # bounds the abandoned users skipped per admitted one


def new_place_id() -> str:
    """A place's identity, unique forever (a uuid4): unlike the ticket, it cannot come back when a store
    forgets (a restarted memory store, Redis losing its last writes), so the ledger keys admissions on it."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Place:
    """Where one user stands in one event's queue."""

    state: FanState  # WAITING, PENDING or ADMITTED (the store never holds PREQUEUE)
    ticket: int  # the join's number, for display and order: a store that forgot may hand it out again
    position: int | None  # 1-based place among those waiting (None unless WAITING)
    waiting: int  # how many wait in total
    served: int  # serving watermark: how many have left the head of the queue
    created: bool = False  # this call made the ticket
    observed_rate: float = 0.0  # the event's smoothed admissions per second, for the ETA
    rate_weight: float = 0.0  # how much of observed_rate is observation, 0 → 1 (see Snapshot)
    bucket_tokens: float | None = None  # rate budget left by the last tick (None: no tick yet)
    place_id: str = ""  # see new_place_id


@dataclass(frozen=True)
class Popped:
    """A user taken from the head of the queue by `admit_batch`."""

    user_id: int
    ticket: int
    score: float
    place_id: str


@dataclass(frozen=True)
class BatchResult:
    admitted: list[Popped]
    abandoned: int  # disconnected past the grace period: skipped
    waiting: int
    served: int


@dataclass(frozen=True)
class Snapshot:
    """The numbers of one event's queue, for progress and stats."""

    waiting: int
    served: int
    joined_total: int
    admitted_total: int
    abandoned_total: int
    observed_rate: float  # admissions per second, smoothed over ~30 s of demand, starting from 0
    # The share of observed_rate that is observation: 1 - exp(-observed seconds / RATE_TIME_CONSTANT).
    # An estimate adds (1 - rate_weight) x a prior (the configured rate): at the opening, observed_rate
    # alone is near 0 and the wait it predicts many times too long.
    rate_weight: float = 0.0
    bucket_tokens: float | None = None  # rate budget left by the last tick (None: no tick yet)
    pending: dict[int, Popped] = field(default_factory=dict)  # user -> their pop, ledger row unconfirmed


class SessionCheck(StrEnum):
    """What the store says of a gate session (`check_session`)."""

    LIVE = "live"
    ENDED = "ended"  # released, revoked, or ended idle earlier
    IDLE = "idle"  # a sliding session past its idle deadline: ended now


class BaseQueueStore:
    """Contract of a queue store. Scores order the queue: lower goes first.

    Pre-queue joiners get a random score in [0, 1) drawn by the caller, later
    joiners their ticket number (>= 1), so the pre-queue, uniformly shuffled,
    stands in front of everyone who came after the opening.
    """

    def join(self, event_id: int, user_id: int, *, prequeue_key: float | None, now: float) -> Place:
        """Queue the user, or return the place they already hold (idempotent).

        `prequeue_key` (random, in [0, 1)) puts a pre-queue joiner in the
        shuffled pre-queue; None queues first come, first served. A new place
        gets a `new_place_id()`.
        """
        raise NotImplementedError

    def place(self, event_id: int, user_id: int) -> Place | None:
        """The user's current place, or None if they hold no ticket."""
        raise NotImplementedError

    def leave(self, event_id: int, user_id: int) -> bool:
        """Give up a waiting place. Admitted or pending users are not removed."""
        raise NotImplementedError

    def forget(self, event_id: int, user_id: int, place_id: str) -> bool:
        """Drop an admitted user's place `place_id` (expired or released) so they may queue again."""
        raise NotImplementedError

    def mark_connected(self, event_id: int, user_id: int, connection: str) -> str | None:
        """`connection` is now the user's socket: the grace period, if running, stops. Returns the socket it
        replaced (to be told it is superseded), None if there was none or it was this one."""
        raise NotImplementedError

    def mark_disconnected(self, event_id: int, user_id: int, connection: str, now: float) -> None:
        """The socket closed: the abandon grace period starts, unless a newer socket took over."""
        raise NotImplementedError

    def connections(self, event_id: int, user_ids: list[int]) -> dict[int, str]:
        """The current socket of each of these users that has one (where their `admitted` push goes)."""
        raise NotImplementedError

    # The socket path, awaited on the server's event loop (no worker thread): Django's `a` prefix.

    async def ajoin_connected(self, event_id: int, user_id: int, connection: str, *, prequeue_key: float | None,
                              now: float) -> tuple[Place, str | None]:
        """`join` and `mark_connected` in one atomic step (one round trip on Redis): (the place, the socket
        this one replaced or None)."""
        raise NotImplementedError

    async def amark_disconnected(self, event_id: int, user_id: int, connection: str, now: float) -> None:
        """`mark_disconnected`, awaited."""
        raise NotImplementedError

    def admit_batch(
        self,
        event_id: int,
        *,
        limit: int,
        rate_per_second: float,
        burst: float,
        now: float,
        abandon_before: float,
        draw_seed: int | None = None,
    ) -> BatchResult:
        """Pop up to min(limit, rate budget) users from the head, mark them pending.

        With `draw_seed`, each is drawn uniformly at random among everyone
        waiting instead (the `random` queueing method). The rate budget is a
        token bucket refilled at `rate_per_second` up to `burst`; admitted
        users spend it. Users disconnected before `abandon_before` are skipped
        and dropped.
        """
        raise NotImplementedError

    def freeze_prequeue(self, event_id: int, *, at: float) -> int:
        """Copy every fan waiting in the pre-queue (a key below 1: user, key, ticket) aside, once, as the draw stood
        `at` the opening (queues/draw.py): the first tick after it does so before its first pop, and the record is
        written from the copy later. The queue itself is untouched. A copy cut short (the tick died in it, before
        any pop) is made again. Returns how many fans were drawn. O(pre-queue), in bounded steps."""
        raise NotImplementedError

    def frozen_prequeue(self, event_id: int) -> tuple[float, int] | None:
        """(when, how many) of the frozen draw, None before `freeze_prequeue` finished (kept after `drop`)."""
        raise NotImplementedError

    def frozen_prequeue_slice(self, event_id: int, start: int, count: int) -> list[tuple[int, int]]:
        """(user, ticket) of the frozen draw's fans at 0-based ranks start .. start + count - 1, in the queue's
        order (by key, then as the queue breaks ties)."""
        raise NotImplementedError

    def drop_frozen_prequeue(self, event_id: int) -> None:
        """Free the frozen copy once the record is written (its when and size stay: the draw is not frozen again)."""
        raise NotImplementedError

    def confirm_admitted(self, event_id: int, user_ids: list[int]) -> None:
        """Pending users whose ledger rows exist become admitted."""
        raise NotImplementedError

    def requeue(self, event_id: int, user_ids: list[int]) -> None:
        """Pending users whose ledger rows were never written go back to their place."""
        raise NotImplementedError

    def snapshot(self, event_id: int) -> Snapshot:
        """Counters and pending users of the event's queue."""
        raise NotImplementedError

    def acquire_lease(self, event_id: int, owner: str, ttl: float) -> bool:
        """Take the event's tick lease unless someone else holds it."""
        raise NotImplementedError

    def release_lease(self, event_id: int, owner: str) -> None:
        """Give the lease back, only if `owner` still holds it."""
        raise NotImplementedError

    def reset(self, event_id: int) -> None:
        """Delete the event's whole queue."""
        raise NotImplementedError

    def ping(self) -> bool:
        """The store answers."""
        raise NotImplementedError

    # The gate's sessions (queues/gate/): one per admission, named by its jti. Kept apart from the queue (a
    # `reset` keeps them) and pruned as they pass their end, so the store holds only sessions still running.

    def end_session(self, event_id: int, session: str, *, until: float, now: float) -> None:
        """End the session (released, revoked): `check_session` answers ENDED until `until`, its hard end (after
        which the gate's cookie refuses itself and the store forgets the session)."""
        raise NotImplementedError

    def check_session(self, event_id: int, session: str, *, now: float, issued_at: float,
                      idle_seconds: float | None, until: float) -> SessionCheck:
        """One gate request in the session, in one atomic step: ENDED if it was ended; for a sliding session
        (`idle_seconds` given) IDLE, and ended from now on, once `now` is past min(max(last activity, issued_at)
        + idle_seconds, until); otherwise LIVE, and a sliding session's last activity becomes `now`."""
        raise NotImplementedError

    def session_activity(self, event_id: int, since: float) -> dict[str, float]:
        """Sliding sessions whose last activity is after `since`: session → that time (the tick moves their
        admissions' expiry from it)."""
        raise NotImplementedError
