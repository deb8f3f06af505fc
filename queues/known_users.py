"""A short per-process memory of active users by id, so an arriving socket (or an OIDC API call) is
authenticated without a database query when its user was looked up moments ago.

A user is remembered for `TTL_SECONDS` at most, and only while active: a user deactivated or deleted in
this process is forgotten at once (the save or delete signal); in another process, within `TTL_SECONDS`.
That is the window in which a deactivated fan can still open a socket (docs/DEPLOYMENT.md). The ledger
writes `Admission.user_id` from these objects, so a remembered user is always a row that existed moments ago,
never a bare id taken from a token (SimpleJWT's TokenUser would skip even the first lookup, but would let a
deleted user's id reach the ledger's foreign key).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

TTL_SECONDS = 60.0
MAX_USERS = 10_000  # ~1.5 KB each: ~15 MB per process at most


class KnownUsers:
    """Active users by primary key (TTL, bounded, least recently used first out), and any other key that
    names one user for good (an OIDC subject's username) mapped to that primary key."""

    def __init__(self, *, ttl: float = TTL_SECONDS, max_users: int = MAX_USERS,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_users, self.clock = ttl, max_users, clock
        self._users: OrderedDict[object, tuple[object, float]] = OrderedDict()
        self._aliases: OrderedDict[Hashable, object] = OrderedDict()
        # Sockets read on the event loop, HTTP views and worker threads write: one lock, held for dict work only.
        self._lock = threading.Lock()
        self.loads = 0  # database lookups made (to watch the cache work)

    def get(self, pk) -> object | None:
        """The remembered active user `pk`, or None (never a database query: safe on the event loop)."""
        with self._lock:
            entry = self._users.get(pk)
            if entry is None:
                return None
            if self.clock() >= entry[1]:
                del self._users[pk]
                return None
            self._users.move_to_end(pk)
            return entry[0]

    def pk_for(self, alias: Hashable) -> object | None:
        with self._lock:
            return self._aliases.get(alias)

    def remember(self, user, *, alias: Hashable | None = None) -> None:
        if not user.is_active:
            return
        with self._lock:
            self._users[user.pk] = (user, self.clock() + self.ttl)
            self._users.move_to_end(user.pk)
            while len(self._users) > self.max_users:
                self._users.popitem(last=False)
            if alias is not None:
                self._aliases[alias] = user.pk
                self._aliases.move_to_end(alias)
                while len(self._aliases) > self.max_users:
                    self._aliases.popitem(last=False)

    def forget(self, pk) -> None:
        with self._lock:
            self._users.pop(pk, None)

    def clear(self) -> None:
        with self._lock:
            self._users.clear()
            self._aliases.clear()

    def load(self, pk):
        """The active user `pk` (remembered, else one query), or None for an unknown or inactive id."""
        user = self.get(pk)
        if user is None:
            self.loads += 1
            user = get_user_model().objects.filter(pk=pk, is_active=True).first()
            if user is not None:
                self.remember(user)
        return user


known_users = KnownUsers()


def _forget_saved_user(sender, instance, **kwargs) -> None:
    # Deactivated (or changed) here: the next arrival reads the row again. Other processes: within the TTL.
    known_users.forget(instance.pk)


post_save.connect(_forget_saved_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="known_users.save")
post_delete.connect(_forget_saved_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="known_users.delete")
