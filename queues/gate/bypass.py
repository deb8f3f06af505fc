"""Bypass rules: traffic the gate lets through without an admission (static assets, health checks, partners,
monitoring, staff), never counted against `max_active`.

Each stored `events.BypassRule` is compiled once per reading of the routes into a check over the original
request. A rule that cannot be compiled (a malformed CIDR, an empty value) is skipped and logged, never fatal:
the gate keeps answering for the event's other rules and admissions.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user
from django.utils.module_loading import import_string

from events.models import BypassKind, BypassRule

if TYPE_CHECKING:
    from .request import OriginalRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BypassCheck:
    rule_id: int
    matches: Callable[[OriginalRequest], bool]


def _equal(given: str | None, expected: str) -> bool:
    """Constant-time: a header or cookie value may be a partner's secret."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _is_staff(original: OriginalRequest) -> bool:
    """Whether the visitor's QMS session (the session cookie the proxy forwarded) is a staff user's.

    Only reached when an event has a staff rule and no earlier rule matched: the one bypass that reads the
    session store.
    """
    request = original.request
    if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return False
    if not hasattr(request, "session"):  # the session middleware normally set it, lazily
        engine = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
        request.session = engine(request.COOKIES[settings.SESSION_COOKIE_NAME])
    user = get_user(request)
    return bool(user.is_active and user.is_staff)


def _check(rule: BypassRule) -> Callable[[OriginalRequest], bool]:
    """The rule as a predicate; ValueError for a rule that cannot match anything sensibly."""
    kind, name, value = rule.kind, rule.name.strip(), rule.value.strip()
    if kind == BypassKind.STAFF:
        return _is_staff
    if not value:
        raise ValueError("empty value")
    if kind == BypassKind.ADDRESS:
        network = ipaddress.ip_network(value, strict=False)
        return lambda original: original.client is not None and original.client in network
    if kind == BypassKind.PATH_PREFIX:
        return lambda original: original.path.startswith(value)
    if kind == BypassKind.PATH_SUFFIX:
        return lambda original: original.path.endswith(value)
    if not name:
        raise ValueError("empty name")
    if kind == BypassKind.HEADER:
        return lambda original: _equal(original.request.headers.get(name), value)
    if kind == BypassKind.COOKIE:
        return lambda original: _equal(original.request.COOKIES.get(name), value)
    raise ValueError(f"unknown kind {kind!r}")


_reported: set[tuple] = set()  # rules already logged as skipped: once per process, not at every reading


def compile_rules(rules: list[BypassRule]) -> tuple[BypassCheck, ...]:
    """The rules' checks in order, leaving out (and logging once) any that cannot be compiled."""
    checks = []
    for rule in rules:
        try:
            checks.append(BypassCheck(rule_id=rule.id, matches=_check(rule)))
        except ValueError as error:
            key = (rule.id, rule.kind, rule.name, rule.value)
            if key not in _reported:
                _reported.add(key)
                logger.warning("gate: bypass rule %s of event %s skipped (%s): %s %r %r",
                               rule.id, rule.event_id, error, rule.kind, rule.name, rule.value)
    return tuple(checks)


def first_bypass(checks: tuple[BypassCheck, ...], original: OriginalRequest) -> int | None:
    """The id of the first rule (in position order) letting `original` through, or None."""
    for check in checks:
        if check.matches(original):
            return check.rule_id
    return None
