"""The queue service: join, status, leave, and the admission tick, shared by HTTP, WebSocket and Celery.

The store holds the live queue; the `Admission` ledger holds every token. A
popped fan is `pending` until the ledger row is committed, so a tick that dies
half-way loses nobody: the next tick confirms or requeues its pending fans.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest, Least
from django.dispatch import Signal
from django.utils import timezone

from events import crowd_message
from events.models import Event, QueueingMethod, SessionMode

from . import challenge, draw, entry, metrics, tokens
from .health_gate import site_healthy
from .models import Admission
from .protocol import RETURN_TOKEN_PARAMETER, FanState
from .refusals import (
    ProofOfWorkRequired,
    QueueDraining,
    QueueNotOpen,
    TokenAlreadyRedeemed,
    TokenRefused,
    TokenReleased,
)
from .store import get_store
from .store.base import Place, Popped, Snapshot
from .webhooks import outbox

logger = logging.getLogger(__name__)

UNLIMITED = 1e9  # rate and burst of events whose queue is switched off

@dataclass(frozen=True, kw_only=True)
class QueueStatus:
    """What a fan sees: their place, or their admission."""

    state: FanState  # PREQUEUE, WAITING or ADMITTED (a PENDING fan: see `_pending_status`)
    ticket: int
    position: int | None = None
    ahead: int | None = None
    waiting: int = 0
    served: int = 0
    eta_seconds: int | None = None
    paused: bool = False
    sale_starts_at: datetime | None = None
    admission: Admission | None = None
    created: bool = False
    message: dict | None = None  # the operator's message to the waiting crowd (events/crowd_message.py)
    draw_rank: int | None = None  # a fan drawn from the pre-queue: their place at the opening (queues/draw.py)


@dataclass(frozen=True)
class Progress:
    """Where the queue stands after a tick: every waiting fan derives their own place from it."""

    event: int
    serving: int
    waiting: int
    rate_per_minute: float | None  # None when the queue admits on join
    queueing_method: str
    paused: bool
    paused_reason: str | None  # "operator", "site_busy" or None
    sale_open: bool
    at: float  # wall clock when the tick decided: a place read later learns nothing from this


@dataclass
class TickResult:
    ran: bool  # False: another tick held the lease
    admitted: list[Admission] = field(default_factory=list)
    abandoned: int = 0
    progress: Progress | None = None


# What the engine decided, for whoever tells the fans (queues/realtime/receivers.py): the engine imports no
# real-time code. Sent synchronously, inside the tick before its fans are confirmed, so a receiver that
# raises leaves them pending and the next tick publishes them again.
tick_decided = Signal()  # kwargs: event, result (TickResult)
queue_reset = Signal()  # kwargs: event; every waiting socket is closed


def _now() -> float:
    return time.time()


def redirect_url(event: Event, token: str, return_url: str | None = None) -> str:
    """Where an admitted fan goes: the reservation URL with `?token=`, or a return URL on the event's protected
    site (validated by the caller with `queues.gate.validated_return_url`) with `?qms_token=`, for the gate.

    The fragment of a return URL is dropped: the token must end the URL (the page appends a socket's token to
    the prefix it renders with `token=""`), and no proxy sees a fragment anyway.
    """
    if not return_url:
        parts = urlsplit(event.reservation_url)
        query = f"{parts.query}&" if parts.query else ""
        return urlunsplit(parts._replace(query=query + urlencode({"token": token})))
    parts = urlsplit(return_url)
    kept = [pair for pair in parts.query.split("&") if pair and pair.split("=")[0] != RETURN_TOKEN_PARAMETER]
    query = "&".join([*kept, urlencode({RETURN_TOKEN_PARAMETER: token})])
    return urlunsplit(parts._replace(query=query, fragment=""))


def admits_on_join(event: Event) -> bool:
    """Queue switched off, or the `passthrough` method: everyone in at once, subject to `max_active`."""
    return not event.queue_enabled or event.queueing_method == QueueingMethod.PASSTHROUGH


def configured_rate(event: Event) -> float:
    """Admissions per second the event allows."""
    return UNLIMITED if admits_on_join(event) else event.admit_per_minute / 60.0


def in_prequeue(event: Event) -> bool:
    """Joins now land in the pre-queue (shuffled at the opening)."""
    return not admits_on_join(event) and not event.sale_open()


def rate_burst(event: Event) -> float:
    """The rate budget's bucket: about two ticks of the configured rate, and at least one fan."""
    return UNLIMITED if admits_on_join(event) else max(1.0, 2 * configured_rate(event) * settings.QMS_TICK_SECONDS)


def effective_rate(event: Event, observed: Place | Snapshot) -> float:
    """Admissions per second to expect: the observed (smoothed) rate, the configured one standing in for what
    was not observed yet (all of it at the opening, none after a few minutes of demand)."""
    rate = observed.observed_rate + (1.0 - observed.rate_weight) * configured_rate(event)
    return rate if rate > 0.01 else configured_rate(event)  # nothing admitted for minutes (capacity full)


def eta_seconds(event: Event, position: int, observed: Place | Snapshot) -> int:
    """Seconds until `position` reaches the front: those the rate budget holds go at the next tick (a full
    bucket at the opening), the others at the expected rate."""
    burst = rate_burst(event)
    ready = burst if observed.bucket_tokens is None else min(
        burst, observed.bucket_tokens + configured_rate(event) * settings.QMS_TICK_SECONDS)
    return max(1, math.ceil((position - ready) / effective_rate(event, observed)))


def eta_last_seconds(event: Event, observed: Snapshot, now: datetime) -> int:
    """Seconds until the last of the waiting fans is admitted; before the opening, plus the time until it."""
    if not observed.waiting:
        return 0
    until_open = max(0, math.ceil((event.sale_starts_at - now).total_seconds())) if in_prequeue(event) else 0
    return until_open + eta_seconds(event, observed.waiting, observed)


def live_admissions(event: Event, now: datetime | None = None) -> int:
    return Admission.objects.filter(event=event).live(now).count()


def _status_from_place(event: Event, place: Place) -> QueueStatus:
    common = {"ticket": place.ticket, "waiting": place.waiting, "served": place.served, "paused": event.paused,
              "sale_starts_at": event.sale_starts_at, "message": crowd_message.public(event)}
    if place.state == FanState.PENDING:
        # Popped by a tick whose ledger row for this place is not committed (yet): first in line.
        return QueueStatus(state=FanState.WAITING, position=1, ahead=0, eta_seconds=1, **common)
    if in_prequeue(event):
        return QueueStatus(state=FanState.PREQUEUE, created=place.created, **common)
    # A random draw has no order: the expected wait is the whole queue's.
    eta_place = place.waiting if event.queueing_method == QueueingMethod.RANDOM else place.position
    return QueueStatus(state=FanState.WAITING, position=place.position, ahead=place.position - 1,
                       eta_seconds=eta_seconds(event, eta_place, place), created=place.created, **common)


def _admitted_status(event: Event, admission: Admission, place: Place | None = None) -> QueueStatus:
    return QueueStatus(state=FanState.ADMITTED, ticket=admission.ticket, waiting=place.waiting if place else 0,
                       served=place.served if place else 0, paused=event.paused,
                       sale_starts_at=event.sale_starts_at, admission=admission, message=crowd_message.public(event))


def _live_admission_for(event: Event, user_id: int, place_id: str) -> Admission | None:
    """The live admission that ended this place. By place id, never by ticket: a store that forgot (restarted,
    or Redis losing its last writes) hands out old ticket numbers again, and an old row must not match."""
    admission = Admission.objects.filter(event=event, user_id=user_id, place_id=place_id).first()
    if admission is not None and admission.is_live():
        return admission
    return None


def _pending_status(event: Event, user, place: Place) -> QueueStatus:
    """A fan popped by a tick that has not confirmed them. If the tick committed their ledger row (and then died
    or is still publishing), they are admitted with that row's token: a worker down for minutes does not keep
    them waiting for the next tick. Nothing is issued here; the row is the one truth, and the next tick sends
    the same token. Without a row the tick is writing it now, or died before and the next one requeues them.
    One indexed query, for pending fans only (a tick's few, or a dead tick's): waiting fans cost none."""
    admission = _live_admission_for(event, user.id, place.place_id)
    if admission is not None:
        return _admitted_status(event, admission, place)
    return _status_from_place(event, place)


def enter(event: Event, user, *, pow_challenge: str | None = None, pow_solution: str | None = None,
          credentials: entry.Credentials = entry.NO_CREDENTIALS) -> QueueStatus:
    """The front door both adapters use: the event's entry policy and proof-of-work gate, then `join`.

    An event whose entry policy is `reject` refuses everyone (EntryClosed). Otherwise a fan who holds a place
    or an admission re-joins freely, and a draining queue refuses the join itself (QueueDraining). A fan who
    holds no place must bring what the entry policy asks (an enqueue token, an access code: queues/entry.py)
    and then, at an event that asks for proof of work, a solved challenge; without one (or with a wrong or
    expired one) ProofOfWorkRequired is raised carrying a fresh `challenge` to solve. The token or code is
    checked first, so nobody solves a challenge they could not use, and spent last, just before the place is
    taken: a refused fan has lost nothing.
    """
    entry.refuse_if_closed(event)
    guarded = challenge.required(event) or entry.restricts(event)
    if not guarded or event.draining or status(event, user) is not None:
        return join(event, user)
    admit = entry.check(event, user, credentials)
    if challenge.required(event):
        try:
            challenge.verify_solution(event, user, pow_challenge, pow_solution)
        except ProofOfWorkRequired as refused:
            refused.extra["challenge"] = challenge.issue_challenge(event, user)
            raise
    with entry.spending(admit):
        return join(event, user)


def join(event: Event, user) -> QueueStatus:
    """Queue the fan (idempotent: a fan who joins again keeps the first ticket). Adapters call `enter`."""
    store = get_store()
    place = store.place(event.id, user.id)
    if place is not None and place.state == FanState.ADMITTED:
        admission = _live_admission_for(event, user.id, place.place_id)
        if admission is not None:
            return _admitted_status(event, admission, place)
        store.forget(event.id, user.id, place.place_id)  # expired or released: queue anew
        place = None
    if place is None and event.draining:
        raise QueueDraining()
    if place is None and in_prequeue(event) and event.prequeue_opens_at and timezone.now() < event.prequeue_opens_at:
        opens_at = event.prequeue_opens_at.isoformat()
        raise QueueNotOpen(f"The queue opens at {opens_at}.", opens_at=opens_at)
    prequeue = in_prequeue(event)
    place = store.join(event.id, user.id, prequeue_key=draw.prequeue_key(event, user.id) if prequeue else None,
                       now=_now())
    if place.created:
        logger.info("join", extra={"event_id": event.id, "user_id": user.id, "ticket": place.ticket})
        metrics.count_join(event.id)
    if place.state != FanState.ADMITTED and _may_admit_on_join(event, place):
        # Nobody ahead and room: admitted now by the same tick, spending the same rate budget. A tick
        # in progress holds the lease for milliseconds: wait for it rather than leave the fan waiting.
        tick(event, lease_wait=1.0)
        return status(event, user) or _status_from_place(event, place)
    if place.state in (FanState.ADMITTED, FanState.PENDING):
        return status(event, user)
    return _with_draw_rank(event, user, _status_from_place(event, place))


@dataclass(frozen=True)
class SocketJoin:
    """What the socket's join found: the fan's status, and the socket of theirs it replaced."""

    status: QueueStatus | None  # None: the store alone cannot answer, the full `enter` decides
    replaced: str | None  # the fan's previous socket (to be superseded), None if there was none


def socket_join_needs_service(event: Event) -> bool:
    """Joins at this event that must go through `enter` (proof of work, an entry policy, a draining queue or a
    pre-queue not open yet refuse some fans; a queue that admits on join runs the tick)."""
    return (challenge.required(event) or entry.restricts(event) or event.draining or admits_on_join(event)
            or (in_prequeue(event) and event.prequeue_opens_at is not None
                and timezone.now() < event.prequeue_opens_at))


async def join_socket(event: Event, user, connection: str) -> SocketJoin:
    """A socket's join on the server's event loop, one store round trip: the place, and `connection` marked as
    the fan's socket. Only for events where `socket_join_needs_service` is False.

    The common case of a storm (a fan queued behind others, or already waiting) is answered here. A fan
    admitted (the ledger holds their token), pending (it may hold it: `_pending_status`) or first in line at
    an open sale (the tick admits them now) gets `status=None`: the caller runs `enter` (in a thread), which
    finds the place this call made.
    """
    prequeue = in_prequeue(event)
    place, replaced = await get_store().ajoin_connected(
        event.id, user.id, connection, prequeue_key=draw.prequeue_key(event, user.id) if prequeue else None,
        now=_now())
    if place.created:
        logger.info("join", extra={"event_id": event.id, "user_id": user.id, "ticket": place.ticket})
        metrics.count_join(event.id)
    if place.state in (FanState.ADMITTED, FanState.PENDING) or _may_admit_on_join(event, place):
        return SocketJoin(status=None, replaced=replaced)
    return SocketJoin(status=_status_from_place(event, place), replaced=replaced)


def _may_admit_on_join(event: Event, place) -> bool:
    if event.paused or place.state != FanState.WAITING:
        return False
    if admits_on_join(event):
        return True
    first = place.waiting == 1 if event.queueing_method == QueueingMethod.RANDOM else place.position == 1
    return event.sale_open() and first


def status(event: Event, user) -> QueueStatus | None:
    """The fan's place or admission; None if they hold no ticket."""
    store = get_store()
    place = store.place(event.id, user.id)
    if place is None:
        return None
    if place.state == FanState.ADMITTED:
        admission = _live_admission_for(event, user.id, place.place_id)
        if admission is None:
            store.forget(event.id, user.id, place.place_id)
            return None
        return _with_draw_rank(event, user, _admitted_status(event, admission, place))
    if place.state == FanState.PENDING:
        return _with_draw_rank(event, user, _pending_status(event, user, place))
    return _with_draw_rank(event, user, _status_from_place(event, place))


def _with_draw_rank(event: Event, user, found: QueueStatus) -> QueueStatus:
    """The status with the fan's rank in the pre-queue's draw, once it is recorded (one indexed query for a fan
    who may have been drawn; none before the opening, nor for anyone who joined after it). Not on the socket's
    event-loop join: its `queued` frame goes without."""
    if found.state == FanState.PREQUEUE or not draw.may_have_rank(event, found.ticket):
        return found
    rank = draw.rank_of(event, user.id)
    return replace(found, draw_rank=rank) if rank is not None else found


def leave(event: Event, user) -> bool:
    """Give up the place. False if the fan was not waiting."""
    left = get_store().leave(event.id, user.id)
    if left:
        logger.info("leave", extra={"event_id": event.id, "user_id": user.id})
    return left


def _issue(event: Event, popped: list[Popped]) -> list[Admission]:
    """Write one ledger row and token per popped fan; only committed rows are returned.

    The fans stay `pending` until their tokens were published (see `tick`).
    """
    store = get_store()
    if not popped:
        return []
    try:
        rows = [_ledger_row(event, fan) for fan in popped]
        with transaction.atomic():
            Admission.objects.bulk_create(rows, ignore_conflicts=True)
            outbox.admissions_issued(event, rows)  # admission.issued, committed with the rows or not at all
    except Exception:
        # Nothing was committed: the fans go back to their places, no token leaves.
        store.requeue(event.id, [fan.user_id for fan in popped])
        raise
    return _ledger_rows(event, popped)


def _ledger_row(event: Event, fan: Popped) -> Admission:
    issued = timezone.now()
    # A sliding session's token lives to its hard cap; its slot is held for one idle time, moved on by the
    # activity the gate sees (`sync_gate_activity`).
    sliding = event.session_mode == SessionMode.SLIDING
    claims = tokens.claims_for(event_id=event.id, user_id=fan.user_id, issued_at=issued,
                               ttl_seconds=event.session_max_seconds if sliding else event.token_ttl_seconds)
    held_until = min(claims["iat"] + event.session_idle_seconds, claims["exp"]) if sliding else claims["exp"]
    return Admission(event=event, user_id=fan.user_id, ticket=fan.ticket, place_id=fan.place_id, jti=claims["jti"],
                     token=tokens.sign(claims), issued_at=issued, expires_at=datetime.fromtimestamp(held_until, UTC))


# When this process last read each sliding event's gate activity into the ledger. A process reading first (or
# after another process's ticks) reads a whole idle time back: more rows, the same result.
_activity_read_at: dict[int, float] = {}
ACTIVITY_CLOCK_SLACK = 5.0  # seconds read again each time: requests in flight, clocks of other processes


def sync_gate_activity(event: Event, now: float | None = None) -> int:
    """Move sliding sessions' ledger expiry to their last request at the gate + the idle time (at most issued +
    the hard cap), so `max_active` counts a fan while they use the site and frees the slot once they stop.
    Returns how many sessions were seen."""
    if event.session_mode != SessionMode.SLIDING:
        return 0
    now = _now() if now is None else now
    since = _activity_read_at.get(event.id, now - event.session_idle_seconds)
    activity = get_store().session_activity(event.id, since)
    _activity_read_at[event.id] = now - ACTIVITY_CLOCK_SLACK
    by_second: dict[int, list[str]] = {}  # one UPDATE per second of activity, not one per session
    for jti, last_seen in activity.items():
        by_second.setdefault(math.ceil(last_seen), []).append(jti)
    cap = F("issued_at") + timedelta(seconds=event.session_max_seconds)
    for second, jtis in by_second.items():
        idle_end = Value(datetime.fromtimestamp(second + event.session_idle_seconds, UTC),
                         output_field=DateTimeField())
        Admission.objects.filter(event=event, jti__in=jtis, released_at__isnull=True).update(
            expires_at=Greatest(F("expires_at"), Least(idle_end, cap)))
    return len(activity)


def _ledger_rows(event: Event, popped: list[Popped]) -> list[Admission]:
    """The committed rows of these pops, matched by place id (a row of an older place never matches)."""
    wanted = {(fan.user_id, fan.place_id) for fan in popped}
    rows = Admission.objects.filter(event=event, place_id__in=[fan.place_id for fan in popped])
    return sorted((row for row in rows if (row.user_id, row.place_id) in wanted), key=lambda row: row.ticket)


def _recover_pending(event: Event, pending: dict[int, Popped]) -> list[Admission]:
    """Finish what a dead tick left: fans whose rows exist are sent their token again, the others requeued."""
    if not pending:
        return []
    rows = _ledger_rows(event, list(pending.values()))
    written = {row.user_id for row in rows}
    get_store().requeue(event.id, sorted(set(pending) - written))
    logger.warning("recovered", extra={"event_id": event.id, "resent": len(written),
                                       "requeued": len(pending) - len(written)})
    return rows


def progress(event: Event, waiting: int, served: int, observed: Snapshot, site_busy: bool = False) -> Progress:
    return Progress(
        event=event.id,
        serving=served,
        waiting=waiting,
        rate_per_minute=round(effective_rate(event, observed) * 60, 1) if not admits_on_join(event) else None,
        queueing_method=event.queueing_method,
        paused=event.paused or site_busy,
        paused_reason="operator" if event.paused else ("site_busy" if site_busy else None),
        sale_open=event.sale_open(),
        at=round(_now(), 3),
    )


def tick(event: Event, *, extra: int = 0, lease_wait: float = 0.0, publish: bool = True) -> TickResult:
    """Admit as many fans as the rate budget and free capacity allow, and tell them. Safe to run concurrently.

    Order: pop (fans `pending`) → ledger rows committed → tokens and progress
    published (the `tick_decided` signal, unless `publish` is False) → fans
    confirmed `admitted`. A tick that dies anywhere in between is finished by
    the next one: rows without a confirmation are published again (same
    token), pops without rows are requeued.

    `extra` admits up to that many now on top of the rate budget (an operator's
    "admit N now"); `max_active` still holds. `lease_wait` waits that long for
    a tick in progress to finish instead of giving up at once.
    """
    store = get_store()
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + lease_wait
    while not store.acquire_lease(event.id, owner, settings.QMS_TICK_LEASE_SECONDS):
        if time.monotonic() >= deadline:
            return TickResult(ran=False)
        time.sleep(0.05)
    started = time.perf_counter()
    try:
        snapshot = store.snapshot(event.id)
        sync_gate_activity(event)
        admitted = _recover_pending(event, snapshot.pending)
        draw.freeze_at_opening(event)  # before the first pop: the pre-queue as drawn (written later, off the tick)
        waiting, served, abandoned = snapshot.waiting, snapshot.served, 0
        open_now = not event.paused and (event.sale_open() or admits_on_join(event))
        site_busy = open_now and not extra and not site_healthy(event)
        if extra or (open_now and not site_busy):
            free = max(0, event.max_active - live_admissions(event))
            rate = configured_rate(event)
            burst = rate_burst(event)
            if extra:
                rate, burst, free = UNLIMITED, float(extra), min(free, extra)
            now = _now()
            seed = draw.tick_seed(event, snapshot.served) if event.queueing_method == QueueingMethod.RANDOM else None
            batch = store.admit_batch(event.id, limit=free, rate_per_second=rate, burst=burst, now=now,
                                      abandon_before=now - settings.QMS_ABANDON_GRACE_SECONDS, draw_seed=seed)
            issued = _issue(event, batch.admitted)
            metrics.count_admissions(event.id, len(issued))
            admitted += issued
            waiting, served, abandoned = batch.waiting, batch.served, batch.abandoned
            for row in admitted:
                logger.info("admit", extra={"event_id": event.id, "user_id": row.user_id, "ticket": row.ticket,
                                            "jti": row.jti})
        result = TickResult(ran=True, admitted=admitted, abandoned=abandoned,
                            progress=progress(event, waiting, served, snapshot, site_busy))
        if publish:
            tick_decided.send(sender=Event, event=event, result=result)
        store.confirm_admitted(event.id, [row.user_id for row in admitted])
        _notice_for_webhooks(event, waiting)
        return result
    finally:
        store.release_lease(event.id, owner)
        metrics.observe_tick(time.perf_counter() - started)


def _notice_for_webhooks(event: Event, waiting: int) -> None:
    """queue.opened and queue.threshold, which the tick observes: written only on a change, and never at the
    admissions' expense (they are issued and told already)."""
    try:
        outbox.notice_opening(event, timezone.now())
        outbox.notice_waiting(event, waiting)
    except Exception:
        logger.exception("webhook outbox: the tick's observations of event %s were not recorded", event.id)


def tick_events():
    """Events a tick looks at: all of them (paused ones still broadcast their progress)."""
    return Event.objects.all()


def stats(event: Event) -> dict:
    snapshot = get_store().snapshot(event.id)
    now = timezone.now()
    rate = snapshot.observed_rate
    return {
        "event": event.id,
        "waiting": snapshot.waiting,
        "served": snapshot.served,
        "joined_total": snapshot.joined_total,
        # The ledger, not the store's counter: a reset empties the store, the issued admissions stay.
        "admitted_total": Admission.objects.filter(event=event).count(),
        "abandoned_total": snapshot.abandoned_total,
        "live_admissions": live_admissions(event, now),
        "max_active": event.max_active,
        "admitted_last_minute": Admission.objects.filter(event=event, issued_at__gte=now - timedelta(minutes=1))
        .count(),
        "observed_rate_per_minute": round(rate * 60, 1),
        "configured_rate_per_minute": event.admit_per_minute,
        "eta_last_seconds": eta_last_seconds(event, snapshot, now),
        "paused": event.paused,
        "draining": event.draining,
        "prequeue": in_prequeue(event),
        "sale_starts_at": event.sale_starts_at,
        "queue_enabled": event.queue_enabled,
        "sale_open": event.sale_open(),
    }


@metrics.counts_token_verification
def verify(token: str, *, redeem: bool, event_id: int | None = None) -> tuple[dict, Admission]:
    """Verify a token against the keys and the ledger; redeem it once if asked.

    Raises TokenRefused (TokenReleased, TokenAlreadyRedeemed: 409) with a stable code.
    """
    claims = tokens.decode(token, event_id=event_id)
    admission = Admission.objects.filter(jti=claims["jti"]).first()
    if admission is None:
        raise TokenRefused(TokenRefused.codes["token_unknown"], code="token_unknown")
    if admission.released_at is not None:
        raise TokenReleased()
    if redeem:
        now = timezone.now()
        with transaction.atomic():
            updated = Admission.objects.filter(pk=admission.pk, redeemed_at__isnull=True).update(redeemed_at=now)
            if not updated:
                raise TokenAlreadyRedeemed()
            admission.redeemed_at = now
            outbox.admission_redeemed(admission)
        logger.info("redeem", extra={"event_id": admission.event_id, "user_id": admission.user_id,
                                     "jti": admission.jti})
    return claims, admission


def release(token: str) -> tuple[Admission, bool]:
    """Free the admission's slot (idempotent). Returns the row and whether this call released it."""
    claims = tokens.decode(token, verify_exp=False)
    admission = Admission.objects.filter(jti=claims["jti"]).first()
    if admission is None:
        raise TokenRefused(TokenRefused.codes["token_unknown"], code="token_unknown")
    return admission, release_admission(admission, token_expires_at=claims["exp"])


def release_admission(admission: Admission, *, token_expires_at: float) -> bool:
    """Free the admission's slot and end its gate session (the gate refuses its cookie from now until the
    token's own end, `token_expires_at`). Idempotent; True if this call released it."""
    now = timezone.now()
    with transaction.atomic():
        released = bool(Admission.objects.filter(pk=admission.pk, released_at__isnull=True).update(released_at=now))
        admission.refresh_from_db()
        if released:
            outbox.admission_released(admission)
    store = get_store()
    store.forget(admission.event_id, admission.user_id, admission.place_id)
    store.end_session(admission.event_id, admission.jti, until=token_expires_at, now=now.timestamp())
    if released:
        logger.info("release", extra={"event_id": admission.event_id, "user_id": admission.user_id,
                                      "jti": admission.jti})
    return released


def reset_queue(event: Event) -> int:
    """Empty the event's queue (admissions already issued stay valid). Returns how many lost their place.

    An operator's action: `queues.operations` runs it, with who asked.
    """
    waiting = get_store().snapshot(event.id).waiting
    get_store().reset(event.id)
    queue_reset.send(sender=Event, event=event)
    return waiting
