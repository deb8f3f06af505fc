"""Failure counts on the shared cache that lock what they count: the machinery under the login defence
(queues/login_defence.py) and the entry-guessing defence (queues/entry_guessing.py).

Only failures are counted, never successes: a stadium's Wi-Fi or a carrier's NAT puts thousands of honest fans
behind one address (docs/DEPLOYMENT.md, "Login defence"). Each attempt checks its counts' locks before doing the
work (a locked attempt costs no password hash, no code lookup) and counts a failure after it.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from .client_address import client_address


@dataclass(frozen=True)
class FailureCount:
    """One counted thing (a username, an address): failures within a window, then a lock as long as the window."""

    code: str  # the refusal's code while locked
    key: str
    limit: int
    seconds: int

    def locked_for(self) -> int:
        """Seconds left of this lock, 0 when not locked. The lock holds its own end (the cache has no TTL read)."""
        ends_at = cache.get(f"{self.key}:lock")
        return max(1, math.ceil(ends_at - time.time())) if ends_at is not None else 0

    def add_failure(self) -> bool:
        """Count one failure (atomic INCR on Redis: every Daphne counts into one number); True if it locked.
        The window starts at the first failure; the count restarts after a lock."""
        if self.limit <= 0:
            return False
        cache.add(self.key, 0, self.seconds)
        try:
            failures = cache.incr(self.key)
        except ValueError:  # the window ended between add and incr: this failure opens the next one
            cache.add(self.key, 1, self.seconds)
            failures = 1
        if failures < self.limit:
            return False
        cache.set(f"{self.key}:lock", time.time() + self.seconds, self.seconds)
        cache.delete(self.key)
        return True

    def reset(self) -> None:
        cache.delete(self.key)


def digest(text: str) -> str:
    """Keys of a fixed shape whatever the client sent (length, spaces, case: `Alice` and `alice` count as one)."""
    return hashlib.sha256(text.casefold().encode()).hexdigest()[:32]


def address_key(request) -> str:
    """The client's address as a count's key (queues/client_address.py: trusted proxies honoured)."""
    return str(client_address(request) or "")


class Lockout:
    """Mixed into the Refusal a lock raises (before the Refusal base): 429 with `Retry-After`."""

    http_status = 429

    def __init__(self, code: str, retry_after: int):
        super().__init__(self.codes[code], code=code)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class CountedAttempt:
    """One attempt's failure counts (a username's and an address's, say). Callers ask `refuse_if_locked` before
    the work and `failed` when it failed."""

    lockout: type[Lockout]  # the refusal a lock raises, with the locked count's code and seconds

    def __init__(self, *counts: FailureCount | None):
        self.counts = [count for count in counts if count is not None]

    def refuse_if_locked(self) -> None:
        """Raise the lockout if any count is locked: nothing is checked then."""
        for count in self.counts:
            if seconds := count.locked_for():
                raise self.lockout(count.code, seconds)

    def failed(self) -> None:
        """Count a failure in every count; raise the lockout if this failure is the one that locks."""
        locked = [count for count in self.counts if count.add_failure()]
        if locked:
            raise self.lockout(locked[0].code, locked[0].seconds)
