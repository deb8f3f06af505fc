"""Guessing defence of the entry policies (queues/entry.py): FAILED access codes and enqueue tokens are counted,
per fan and per address, on the shared cache (queues/failure_counts.py, as the login defence counts wrong
passwords), so neither an account nor a crowd of accounts behind one address can try codes at the join
throttle's pace, over HTTP or the socket.

- A fan with `QMS_ENTRY_FAILURES_PER_USER` failed codes or tokens within `QMS_ENTRY_USER_LOCK_SECONDS` is locked
  for that long (`entry_attempts_locked`, at every event: a bot gains nothing by switching sales), the right
  code included.
- An address with `QMS_ENTRY_FAILURES_PER_ADDRESS` failures (any fans: a spray over many accounts) within
  `QMS_ENTRY_ADDRESS_LOCK_SECONDS` waits out that window (`entry_attempts_address_locked`). The limit is well
  above what a NAT full of honest fans mistypes; 0 switches the address count off.

What counts: a code or token the fan sent that was refused (unknown, held by another fan, revoked; malformed,
badly signed, expired, for another event or user, used). Not counted: sending none (the page's first join is
how it learns a code is asked for), a right one, and a code lost in a race after it checked out. A right code
resets nothing: it proves nothing about the guesses before it (and a fan's own code can be sent again after
leaving, so a reset would give a guesser a fresh count for each round). A fan who holds a place or an admission
is never asked for a code, so is never locked out of it.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings

from .failure_counts import CountedAttempt, FailureCount, Lockout, digest
from .refusals import EntryRefused

KEY_PREFIX = "entry_guessing"
# Refusals of a join that sent no code or token: the page asking, not a guess.
NOTHING_SENT = frozenset({"access_code_required", "enqueue_token_required"})


class EntryAttemptsLocked(Lockout, EntryRefused):
    """Too many refused codes or tokens: none is looked at until `retry_after` seconds (`Retry-After` over HTTP,
    the body's `retry_after` in the socket's `error` frame, close 4430)."""

    code, detail = "entry_attempts_locked", "Too many wrong access codes or enqueue tokens from this account: wait " \
                                            "`Retry-After` seconds (`retry_after`); the right one is refused too " \
                                            "until then."
    codes: ClassVar[dict[str, str]] = {
        "entry_attempts_locked": detail,
        "entry_attempts_address_locked": "Too many wrong access codes or enqueue tokens from this address (many "
                                         "accounts): wait `Retry-After` seconds (`retry_after`).",
    }

    def __init__(self, code: str, retry_after: int):
        super().__init__(code, retry_after)
        self.extra["retry_after"] = retry_after  # in the body too: a socket's `error` frame has no headers


class EntryAttempt(CountedAttempt):
    """One join's counts: the fan's and the address's. `entry.check` asks `refuse_if_locked` before it looks at
    the code or token, and `failed` with the refusal it raises."""

    lockout = EntryAttemptsLocked

    def __init__(self, user, address: str):
        super().__init__(
            FailureCount("entry_attempts_locked", f"{KEY_PREFIX}:user:{user.pk}",
                         settings.QMS_ENTRY_FAILURES_PER_USER, settings.QMS_ENTRY_USER_LOCK_SECONDS),
            FailureCount("entry_attempts_address_locked", f"{KEY_PREFIX}:address:{digest(address)}",
                         settings.QMS_ENTRY_FAILURES_PER_ADDRESS, settings.QMS_ENTRY_ADDRESS_LOCK_SECONDS))

    def refused(self, refusal: EntryRefused) -> None:
        """Count `refusal` if the fan sent something (see the module docstring); raises the lockout if it locks."""
        if refusal.code not in NOTHING_SENT:
            self.failed()
