"""Crowds of fans for the service-level tests: many users in one query, or users queued for an event."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from events.models import Event
from queues import admission


def make_fans(count: int, prefix: str = "crowd", password: str | None = None) -> list:
    """`count` users `<prefix>0`, `<prefix>1`, ... made in one query, in id order; with `password`, they can log
    in with it (hashed once for all).

    The default prefix keeps them apart from `make_user`'s `fan<n>` users in the same test.
    """
    users = get_user_model()
    hashed = make_password(password)  # None: an unusable password, no login
    users.objects.bulk_create([users(username=f"{prefix}{i}", password=hashed) for i in range(count)])
    return list(users.objects.filter(username__startswith=prefix).order_by("id"))


def queue_fans(event: Event, make_user, count: int) -> list:
    """`count` new fans (from the `make_user` fixture), each joined to `event` in turn."""
    fans = [make_user() for _ in range(count)]
    for fan in fans:
        admission.join(event, fan)
    return fans
