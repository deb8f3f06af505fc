"""Which event guards a request: each event's protected routes (host + path prefix) and bypass rules, as a
per-process copy at most `MAX_AGE_SECONDS` old, so the gate's common path reads no database.

The copy is whole (every route of every event, two queries), dropped at once when this process saves or deletes
an event, a route or a rule, and otherwise re-read after the same 2 s as the event copy (queues/recent_events.py):
a route added in the admin of another process guards within 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models.signals import post_delete, post_save

from events.models import BypassRule, Event, ProtectedRoute

from ..recent_events import RecentCopy
from .bypass import BypassCheck, compile_rules
from .request import remove_dot_segments, route_host


@dataclass(frozen=True)
class GuardedEvent:
    """What the gate needs of an event: its id, its session limits and its bypass rules (in position order)."""

    id: int
    sliding: bool
    session_idle_seconds: int
    session_max_seconds: int
    bypass: tuple[BypassCheck, ...]


@dataclass(frozen=True)
class Routes:
    """One reading of every route: host → [(path prefix, event)], longest prefix first."""

    by_host: dict[str, list[tuple[str, GuardedEvent]]]

    def lookup(self, host: str, path: str) -> GuardedEvent | None:
        """The event whose route on exactly `host` has the longest prefix of `path`, or None."""
        for prefix, event in self.by_host.get(host, ()):
            if path.startswith(prefix):
                return event
        return None


def _read_routes() -> Routes:
    guarded = {
        event.id: event
        for event in Event.objects.filter(routes__isnull=False).distinct().only(
            "id", "session_mode", "session_idle_seconds", "session_max_seconds")
    }
    rules: dict[int, list[BypassRule]] = {}
    for rule in BypassRule.objects.filter(event_id__in=guarded):  # ordered by event, position, id
        rules.setdefault(rule.event_id, []).append(rule)
    events = {
        event_id: GuardedEvent(id=event_id, sliding=event.session_mode == "sliding",
                               session_idle_seconds=event.session_idle_seconds,
                               session_max_seconds=event.session_max_seconds,
                               bypass=compile_rules(rules.get(event_id, [])))
        for event_id, event in guarded.items()
    }
    by_host: dict[str, list[tuple[str, GuardedEvent]]] = {}
    for host, prefix, event_id in ProtectedRoute.objects.values_list("host", "path_prefix", "event_id"):
        by_host.setdefault(route_host(host), []).append((prefix, events[event_id]))
    for entries in by_host.values():
        entries.sort(key=lambda entry: len(entry[0]), reverse=True)
    return Routes(by_host=by_host)


class GateRoutes(RecentCopy[Routes]):
    """The routes as read at most `max_age` seconds ago (two queries when older)."""

    def __init__(self) -> None:
        super().__init__(_read_routes)

    def lookup(self, host: str, path: str) -> GuardedEvent | None:
        return self.current().lookup(route_host(host), path)


gate_routes = GateRoutes()


def validated_return_url(event: Event | int, url: str | None) -> str | None:
    """`url` if the waiting room may send `event`'s admitted fans there, else None.

    Only an absolute http(s) URL whose host and path fall under one of this event's own routes (the longest
    matching route is this event's): no open redirect to another site or another event's sale. Userinfo,
    backslashes, control characters, `//` and `.`/`..` path segments (resolved elsewhere by a browser) are refused.
    """
    event_id = event if isinstance(event, int) else event.pk
    if not url or len(url) > 2000 or "\\" in url or any(ord(char) <= 32 or ord(char) == 127 for char in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    path = parts.path or "/"
    if remove_dot_segments(path) != path:
        return None
    guarded = gate_routes.lookup(parts.netloc, path)
    return url if guarded is not None and guarded.id == event_id else None


def _forget_routes(sender, **kwargs) -> None:
    gate_routes.clear()


for _model in (Event, ProtectedRoute, BypassRule):
    post_save.connect(_forget_routes, sender=_model, dispatch_uid=f"gate_routes.save.{_model.__name__}")
    post_delete.connect(_forget_routes, sender=_model, dispatch_uid=f"gate_routes.delete.{_model.__name__}")
