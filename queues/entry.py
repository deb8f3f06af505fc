"""Who may join an event: its entry policy (open, invite only, access codes, reject), checked by
`admission.enter` for the HTTP join and the socket's alike, and the operator's access codes (upload, revoke,
counts) for the admin and the staff API.

A fan without a place brings an enqueue token (a JWT the ticketing site signs with the event's
`enqueue_key`) or an access code. `check` reads it and refuses what is wrong without spending anything;
`spending` spends it (a database row, committed) just before the place is taken and gives it back if the
join fails, so a refused fan has lost nothing. The database's unique constraint (tokens) and a conditional
update (codes) decide a race: exactly one fan wins a token or a code.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jwt
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from events.enqueue_keys import UnusableKey, verification_key
from events.models import AccessCode, EnqueueTokenUse, EntryPolicy, Event

from .entry_guessing import EntryAttempt
from .refusals import (
    AccessCodeRefused,
    AccessCodeUsed,
    EnqueueTokenRefused,
    EnqueueTokenUsed,
    EntryClosed,
    EntryRefused,
)

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 10  # the ticketing site's clock and ours may differ a little; an invitation lives minutes
REQUIRED_CLAIMS = ["evt", "exp", "jti"]
MAX_CODE_LENGTH = AccessCode._meta.get_field("code").max_length
MAX_UPLOAD_CODES = 100_000  # one upload; more go in several


@dataclass(frozen=True)
class Credentials:
    """What a fan brought to join: the invitation's enqueue token, an access code (either may be absent), and
    the client address it came from (queues/entry_guessing.py counts failures per address too)."""

    enqueue_token: str | None = None
    access_code: str | None = None
    address: str = ""

    @classmethod
    def read(cls, values, address: str = "") -> Credentials:
        """From a request body or a socket's query (a mapping of str; anything else counts as absent)."""
        def text(name: str) -> str | None:
            value = values.get(name) if hasattr(values, "get") else None
            return value.strip() or None if isinstance(value, str) else None
        return cls(enqueue_token=text("enqueue_token"), access_code=text("access_code"), address=address)


NO_CREDENTIALS = Credentials()


def restricts(event: Event) -> bool:
    """Joins at this event need the service's check (the socket's fast path cannot make it)."""
    return event.entry_policy != EntryPolicy.OPEN


def refuse_if_closed(event: Event) -> None:
    """Policy `reject`: nobody joins or re-joins; the operator's text travels with the refusal."""
    if event.entry_policy == EntryPolicy.REJECT:
        raise EntryClosed(message=event.closed_message)


class Pass:
    """A checked, not yet spent right to take a place (open events need none)."""

    def spend(self) -> None:
        """Spend it for good (committed); raises the refusal if another fan spent it first."""

    def give_back(self) -> None:
        """Undo `spend`: the join it was for failed."""


@dataclass
class TokenPass(Pass):
    event: Event
    user: object
    jti: str
    row: EnqueueTokenUse | None = None

    def spend(self) -> None:
        try:
            with transaction.atomic():
                self.row = EnqueueTokenUse.objects.create(event=self.event, jti=self.jti, user=self.user,
                                                          used_at=timezone.now())
        except IntegrityError:  # the unique constraint (event, jti): another join spent it first
            raise EnqueueTokenUsed() from None

    def give_back(self) -> None:
        if self.row is not None:
            self.row.delete()


@dataclass
class CodePass(Pass):
    code: AccessCode
    user: object
    claimed: bool = False  # this call took the code (not a re-join with the fan's own)

    def spend(self) -> None:
        if self.code.used_by_id == self.user.pk:
            return  # the fan's own code: held already
        # Conditional: under concurrency the database serialises the updates, the second finds it taken.
        self.claimed = bool(AccessCode.objects.filter(pk=self.code.pk, used_by__isnull=True, revoked_at__isnull=True)
                            .update(used_by=self.user, used_at=timezone.now()))
        if not self.claimed:
            raise _code_refusal(AccessCode.objects.get(pk=self.code.pk), self.user)

    def give_back(self) -> None:
        if self.claimed:
            AccessCode.objects.filter(pk=self.code.pk, used_by=self.user).update(used_by=None, used_at=None)


OPEN_PASS = Pass()


def check(event: Event, user, credentials: Credentials) -> Pass:
    """The fan's right to take a place at `event` (which holds none yet), checked but not spent. `reject` is
    `refuse_if_closed`'s, asked first of every fan. A fan or address locked for guessing (queues/entry_guessing.py)
    is refused before the code or token is looked at; a refused one is counted."""
    if event.entry_policy not in (EntryPolicy.INVITE_ONLY, EntryPolicy.CODES):
        return OPEN_PASS
    attempt = EntryAttempt(user, credentials.address)
    attempt.refuse_if_locked()
    try:
        if event.entry_policy == EntryPolicy.INVITE_ONLY:
            return TokenPass(event, user, _verified_jti(event, user, credentials.enqueue_token))
        return CodePass(_usable_code(event, user, credentials.access_code), user)
    except EntryRefused as refusal:
        attempt.refused(refusal)
        raise


@contextmanager
def spending(admit: Pass) -> Iterator[None]:
    """Spend `admit` before the body takes the place; give it back if the body raises."""
    admit.spend()
    try:
        yield
    except BaseException:
        admit.give_back()
        raise


# --- enqueue tokens ---------------------------------------------------------------------


def _token_refusal(code: str) -> EnqueueTokenRefused:
    return EnqueueTokenRefused(EnqueueTokenRefused.codes[code], code=code)


def _verified_jti(event: Event, user, token: str | None) -> str:
    """The token's `jti` if it invites this fan to this event and was never used; a refusal otherwise."""
    if not token:
        raise _token_refusal("enqueue_token_required")
    try:
        key, algorithms = verification_key(event.enqueue_key)
    except UnusableKey as unusable:
        logger.error("enqueue key unusable", extra={"event_id": event.id, "reason": str(unusable)})
        raise _token_refusal("enqueue_token_invalid") from None
    try:
        claims = jwt.decode(token, key, algorithms=algorithms, leeway=LEEWAY_SECONDS,
                            options={"require": REQUIRED_CLAIMS, "verify_aud": False, "verify_iss": False})
    except jwt.ExpiredSignatureError:
        raise _token_refusal("enqueue_token_expired") from None
    except jwt.PyJWTError:
        raise _token_refusal("enqueue_token_invalid") from None
    if str(claims["evt"]) != str(event.id):
        raise _token_refusal("enqueue_token_wrong_event")
    if "sub" in claims and str(claims["sub"]) != user.get_username():
        raise _token_refusal("enqueue_token_wrong_user")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= EnqueueTokenUse._meta.get_field("jti").max_length:
        raise _token_refusal("enqueue_token_invalid")
    if EnqueueTokenUse.objects.filter(event=event, jti=jti).exists():
        raise EnqueueTokenUsed()
    return jti


# --- access codes -----------------------------------------------------------------------


def _code_refusal(code: AccessCode, user) -> AccessCodeRefused | AccessCodeUsed | None:
    """Why `code` cannot take this fan's place, or None if it can."""
    if code.revoked_at is not None:
        return AccessCodeRefused(AccessCodeRefused.codes["access_code_revoked"], code="access_code_revoked")
    if code.used_by_id is not None and code.used_by_id != user.pk:
        return AccessCodeUsed()
    return None


def _usable_code(event: Event, user, text: str | None) -> AccessCode:
    if not text:
        raise AccessCodeRefused()
    code = AccessCode.objects.filter(event=event, code=text).first() if len(text) <= MAX_CODE_LENGTH else None
    if code is None:
        raise AccessCodeRefused(AccessCodeRefused.codes["access_code_invalid"], code="access_code_invalid")
    refusal = _code_refusal(code, user)
    if refusal is not None:
        raise refusal
    return code


def parse_codes(text: str) -> list[str]:
    """The codes of an upload: the first column of CSV (or one per line), blanks and a `code` header skipped,
    each once. ValueError names the first code that is too long."""
    codes: dict[str, None] = {}
    for row in csv.reader(io.StringIO(text)):
        value = row[0].strip() if row else ""
        if not value or (not codes and value.lower() == "code"):
            continue
        if len(value) > MAX_CODE_LENGTH:
            raise ValueError(f"The code {value[:20]!r}… is longer than {MAX_CODE_LENGTH} characters.")
        codes[value] = None
    if len(codes) > MAX_UPLOAD_CODES:
        raise ValueError(f"At most {MAX_UPLOAD_CODES} codes per upload.")
    return list(codes)


def add_codes(event: Event, codes: Iterable[str]) -> int:
    """Add the codes the event does not have yet; returns how many were added (existing ones are left as they
    are: uploading the same file twice changes nothing)."""
    codes = list(codes)
    before = AccessCode.objects.filter(event=event).count()
    AccessCode.objects.bulk_create([AccessCode(event=event, code=code) for code in codes], ignore_conflicts=True,
                                   batch_size=2000)
    return AccessCode.objects.filter(event=event).count() - before


def revoke(codes) -> int:
    """Revoke these codes (a queryset): they refuse new joins. A fan already holding a place with one keeps it
    (places are never taken back by a revoke); only joining again needs a code. Returns how many were revoked."""
    return codes.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def code_counts(event: Event) -> dict[str, int]:
    """{total, used, revoked, available} of the event's codes, in one query."""
    counts = AccessCode.objects.filter(event=event).aggregate(
        total=Count("id"), used=Count("id", filter=Q(used_by__isnull=False)),
        revoked=Count("id", filter=Q(revoked_at__isnull=False)),
        available=Count("id", filter=Q(used_by__isnull=True, revoked_at__isnull=True)))
    return counts
