"""In-process queue store: the embedded default (one server process), same contract as Redis."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from ..protocol import FanState
from .base import (
    MAX_SKIPS_PER_ADMIT,
    RATE_TIME_CONSTANT,
    BaseQueueStore,
    BatchResult,
    Place,
    Popped,
    SessionCheck,
    Snapshot,
    new_place_id,
)

PRUNE_EVERY_SECONDS = 1.0  # the gate's session maps are swept at most this often per event (O(sessions) each)


@dataclass
class _EventQueue:
    waiting: SortedList = field(default_factory=SortedList)  # (score, user_id)
    score: dict[int, float] = field(default_factory=dict)
    ticket: dict[int, int] = field(default_factory=dict)
    state: dict[int, FanState] = field(default_factory=dict)
    place_id: dict[int, str] = field(default_factory=dict)
    gone: dict[int, float] = field(default_factory=dict)
    conn: dict[int, str] = field(default_factory=dict)  # user -> their current socket
    pending: dict[int, float] = field(default_factory=dict)  # user -> original score
    seq: int = 0
    served: int = 0
    admitted_total: int = 0
    abandoned_total: int = 0
    bucket_tokens: float | None = None
    bucket_at: float = 0.0
    rate: float = 0.0
    rate_weight: float = 0.0
    rate_at: float = 0.0
    lease_owner: str | None = None
    lease_until: float = 0.0


@dataclass
class _GateSessions:
    ended: dict[str, float] = field(default_factory=dict)  # session -> its hard end
    seen: dict[str, float] = field(default_factory=dict)  # sliding session -> its last activity
    pruned_at: float = 0.0

    def prune(self, now: float, idle_seconds: float | None) -> None:
        if now < self.pruned_at + PRUNE_EVERY_SECONDS:
            return
        self.pruned_at = now
        self.ended = {session: until for session, until in self.ended.items() if until > now}
        if idle_seconds is not None:
            self.seen = {session: last for session, last in self.seen.items() if last >= now - idle_seconds}


class MemoryQueueStore(BaseQueueStore):
    def __init__(self, **_options):
        self._events: dict[int, _EventQueue] = {}
        self._sessions: dict[int, _GateSessions] = {}  # apart from the queue: a reset keeps them
        self._drawn: dict[int, tuple[float, int, list]] = {}  # frozen draws: (when, size, order); a reset keeps them
        self._lock = threading.Lock()

    def _queue(self, event_id: int) -> _EventQueue:
        queue = self._events.get(event_id)
        if queue is None:
            queue = self._events[event_id] = _EventQueue()
        return queue

    def _place(self, queue: _EventQueue, user_id: int, created: bool = False) -> Place | None:
        state = queue.state.get(user_id)
        if state is None:
            return None
        position = None
        if state == FanState.WAITING:
            position = queue.waiting.index((queue.score[user_id], user_id)) + 1
        return Place(state=state, ticket=queue.ticket[user_id], position=position, waiting=len(queue.waiting),
                     served=queue.served, created=created, observed_rate=queue.rate,
                     rate_weight=queue.rate_weight, bucket_tokens=queue.bucket_tokens,
                     place_id=queue.place_id[user_id])

    def join(self, event_id, user_id, *, prequeue_key, now):
        with self._lock:
            return self._join(self._queue(event_id), user_id, prequeue_key)

    def _join(self, queue: _EventQueue, user_id: int, prequeue_key: float | None) -> Place:
        if user_id in queue.state:
            queue.gone.pop(user_id, None)
            return self._place(queue, user_id)
        queue.seq += 1
        score = prequeue_key if prequeue_key is not None else float(queue.seq)
        queue.score[user_id] = score
        queue.ticket[user_id] = queue.seq
        queue.place_id[user_id] = new_place_id()
        queue.state[user_id] = FanState.WAITING
        queue.waiting.add((score, user_id))
        return self._place(queue, user_id, created=True)

    def place(self, event_id, user_id):
        with self._lock:
            return self._place(self._queue(event_id), user_id)

    def _drop(self, queue: _EventQueue, user_id: int) -> None:
        queue.state.pop(user_id, None)
        queue.ticket.pop(user_id, None)
        queue.place_id.pop(user_id, None)
        queue.score.pop(user_id, None)
        queue.gone.pop(user_id, None)
        queue.conn.pop(user_id, None)

    def leave(self, event_id, user_id):
        with self._lock:
            queue = self._queue(event_id)
            if queue.state.get(user_id) != FanState.WAITING:
                return False
            queue.waiting.remove((queue.score[user_id], user_id))
            self._drop(queue, user_id)
            return True

    def forget(self, event_id, user_id, place_id):
        with self._lock:
            queue = self._queue(event_id)
            if queue.state.get(user_id) != FanState.ADMITTED or queue.place_id.get(user_id) != place_id:
                return False
            self._drop(queue, user_id)
            return True

    def mark_connected(self, event_id, user_id, connection):
        with self._lock:
            return self._mark_connected(self._queue(event_id), user_id, connection)

    @staticmethod
    def _mark_connected(queue: _EventQueue, user_id: int, connection: str) -> str | None:
        previous = queue.conn.get(user_id)
        queue.conn[user_id] = connection
        queue.gone.pop(user_id, None)
        return previous if previous != connection else None

    def mark_disconnected(self, event_id, user_id, connection, now):
        with self._lock:
            queue = self._queue(event_id)
            if user_id in queue.state and queue.conn.get(user_id) == connection:
                queue.gone[user_id] = now
                del queue.conn[user_id]

    def connections(self, event_id, user_ids):
        with self._lock:
            conn = self._queue(event_id).conn
            return {user: conn[user] for user in user_ids if user in conn}

    # In-process: the async path is the same few dictionary steps under the lock, held for microseconds.

    async def ajoin_connected(self, event_id, user_id, connection, *, prequeue_key, now):
        with self._lock:
            place = self._join(self._queue(event_id), user_id, prequeue_key)
            return place, self._mark_connected(self._queue(event_id), user_id, connection)

    async def amark_disconnected(self, event_id, user_id, connection, now):
        self.mark_disconnected(event_id, user_id, connection, now)

    def admit_batch(self, event_id, *, limit, rate_per_second, burst, now, abandon_before, draw_seed=None):
        with self._lock:
            queue = self._queue(event_id)
            if queue.bucket_tokens is None:
                queue.bucket_tokens, queue.bucket_at = burst, now
            elapsed = max(0.0, now - queue.bucket_at)
            tokens = min(burst, queue.bucket_tokens + elapsed * rate_per_second)
            queue.bucket_at = now
            demand = len(queue.waiting) > 0
            want = max(0, min(int(math.floor(tokens + 1e-9)), limit))
            admitted: list[Popped] = []
            abandoned = 0
            draw = random.Random(draw_seed) if draw_seed is not None else None
            while len(admitted) < want and queue.waiting and abandoned < MAX_SKIPS_PER_ADMIT * (want + 1):
                score, user_id = queue.waiting.pop(draw.randrange(len(queue.waiting)) if draw else 0)
                queue.served += 1
                gone_at = queue.gone.get(user_id)
                if gone_at is not None and gone_at < abandon_before:
                    self._drop(queue, user_id)
                    abandoned += 1
                    continue
                queue.state[user_id] = FanState.PENDING
                queue.pending[user_id] = score
                admitted.append(self._popped(queue, user_id, score))
            queue.bucket_tokens = tokens - len(admitted)
            queue.admitted_total += len(admitted)
            queue.abandoned_total += abandoned
            if demand:
                self._observe_rate(queue, len(admitted), now)
            return BatchResult(admitted, abandoned, len(queue.waiting), queue.served)

    @staticmethod
    def _observe_rate(queue: _EventQueue, count: int, now: float) -> None:
        dt = now - queue.rate_at if queue.rate_at else 1.0
        dt = min(max(dt, 0.001), RATE_TIME_CONSTANT)
        weight = 1.0 - math.exp(-dt / RATE_TIME_CONSTANT)
        queue.rate += weight * (count / dt - queue.rate)
        queue.rate_weight += weight * (1.0 - queue.rate_weight)
        queue.rate_at = now

    @staticmethod
    def _popped(queue: _EventQueue, user_id: int, score: float) -> Popped:
        return Popped(user_id=user_id, ticket=queue.ticket[user_id], score=score, place_id=queue.place_id[user_id])

    def freeze_prequeue(self, event_id, *, at):
        with self._lock:
            if event_id not in self._drawn:
                queue = self._queue(event_id)
                order = [(user_id, queue.ticket[user_id]) for _, user_id in queue.waiting.irange(maximum=(1.0, -1))]
                self._drawn[event_id] = (at, len(order), order)
            return self._drawn[event_id][1]

    def frozen_prequeue(self, event_id):
        drawn = self._drawn.get(event_id)
        return drawn[:2] if drawn else None

    def frozen_prequeue_slice(self, event_id, start, count):
        return self._drawn[event_id][2][start:start + count]

    def drop_frozen_prequeue(self, event_id):
        with self._lock:
            at, size, _ = self._drawn[event_id]
            self._drawn[event_id] = (at, size, [])

    def confirm_admitted(self, event_id, user_ids):
        with self._lock:
            queue = self._queue(event_id)
            for user_id in user_ids:
                if queue.pending.pop(user_id, None) is not None:
                    queue.state[user_id] = FanState.ADMITTED

    def requeue(self, event_id, user_ids):
        with self._lock:
            queue = self._queue(event_id)
            for user_id in user_ids:
                score = queue.pending.pop(user_id, None)
                if score is None:
                    continue
                queue.state[user_id] = FanState.WAITING
                queue.waiting.add((score, user_id))
                queue.served -= 1
                queue.admitted_total -= 1

    def snapshot(self, event_id):
        with self._lock:
            queue = self._queue(event_id)
            return Snapshot(
                waiting=len(queue.waiting),
                served=queue.served,
                joined_total=queue.seq,
                admitted_total=queue.admitted_total,
                abandoned_total=queue.abandoned_total,
                observed_rate=queue.rate,
                rate_weight=queue.rate_weight,
                bucket_tokens=queue.bucket_tokens,
                pending={u: self._popped(queue, u, s) for u, s in queue.pending.items()},
            )

    def acquire_lease(self, event_id, owner, ttl):
        with self._lock:
            queue = self._queue(event_id)
            now = time.monotonic()
            if queue.lease_owner is not None and queue.lease_until > now:
                return False
            queue.lease_owner, queue.lease_until = owner, now + ttl
            return True

    def release_lease(self, event_id, owner):
        with self._lock:
            queue = self._queue(event_id)
            if queue.lease_owner == owner:
                queue.lease_owner = None

    def reset(self, event_id):
        with self._lock:
            old = self._events.pop(event_id, None)
            if old is not None:  # tickets keep counting up (a fan's new ticket reads as later than the old)
                self._events[event_id] = _EventQueue(seq=old.seq, served=old.served)

    def ping(self):
        return True

    def _gate(self, event_id: int) -> _GateSessions:
        return self._sessions.setdefault(event_id, _GateSessions())

    def end_session(self, event_id, session, *, until, now):
        with self._lock:
            sessions = self._gate(event_id)
            sessions.prune(now, None)
            if until > now:
                sessions.ended[session] = until
            sessions.seen.pop(session, None)

    def check_session(self, event_id, session, *, now, issued_at, idle_seconds, until):
        with self._lock:
            sessions = self._gate(event_id)
            if sessions.ended.get(session, now) > now:
                return SessionCheck.ENDED
            if idle_seconds is None:
                return SessionCheck.LIVE
            last = max(sessions.seen.get(session, issued_at), issued_at)
            if now > min(last + idle_seconds, until):
                sessions.ended[session] = until
                sessions.seen.pop(session, None)
                return SessionCheck.IDLE
            sessions.seen[session] = max(now, sessions.seen.get(session, now))
            sessions.prune(now, idle_seconds)
            return SessionCheck.LIVE

    def session_activity(self, event_id, since):
        with self._lock:
            seen = self._sessions.get(event_id, _GateSessions()).seen
            return {session: last for session, last in seen.items() if last > since}
