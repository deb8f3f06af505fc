"""The endpoints a reverse proxy calls: `/gate/auth` on every request to a protected site, `/gate/revoke` when
the origin ends a session (docs/API.md, "The gate").

Plain Django views (no DRF, no CSRF: the proxy is the client). The common path, a visitor with a gate cookie,
reads the routes from this process's copy, verifies the cookie's HMAC and makes one store round trip
(`check_session`); no database. A `?qms_token=` exchange adds one offline ES256 verification.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, quote, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import admission, tokens
from ..models import Admission
from ..protocol import RETURN_TOKEN_PARAMETER
from ..refusals import TokenRefused
from ..store import get_store
from ..store.base import SessionCheck
from . import cookies
from .bypass import first_bypass
from .request import OriginalRequest
from .routes import GuardedEvent, gate_routes

clock = time.time  # the gate's now (tests set it to walk a session through its idle time and cap)

# Every `X-QMS-Reason` the gate answers with, and what it means (docs/API.md, "The gate").
REASONS = {
    "gate_no_route": "No event's protected route matches this host and path (403).",
    "gate_no_admission": "No gate cookie and no admission token: the visitor must queue in the waiting room.",
    "gate_cookie_invalid": "The gate cookie is malformed, forged, changed, or was issued for another host.",
    "gate_wrong_event": "The cookie or token admits to another event.",
    "gate_token_invalid": "The `qms_token` admission token fails verification (signature, key, audience...).",
    "gate_session_expired": "The session passed its hard end (the token's life, or the sliding session's cap).",
    "gate_session_ended": "The admission was released or revoked.",
    "gate_session_idle": "The sliding session saw no request for its idle time; its slot went to the next fan.",
}


class Denied(Exception):
    def __init__(self, reason: str):
        assert reason in REASONS, reason
        self.reason = reason


def _answer(status: int, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(status=status, headers=headers)
    response["Cache-Control"] = "no-store"  # a proxy must ask again for every request
    # A 401 is the gate's everyday answer (every request of every visitor not yet admitted): not a warning for
    # django.request to log each time (the proxy's access log has them; X-QMS-Reason says why).
    response._has_been_logged = True
    return response


def _return_url(original: OriginalRequest) -> str:
    """The visitor's URL without a `qms_token` (which is spent, or was refused)."""
    path, _, query = original.uri.partition("?")
    if RETURN_TOKEN_PARAMETER in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if name != RETURN_TOKEN_PARAMETER]
        query = urlencode(kept)
    return f"{original.proto}://{original.host}{path}" + (f"?{query}" if query else "")


def waiting_room_url(event_id: int, original: OriginalRequest) -> str:
    base = settings.QMS_PUBLIC_URL or f"{original.proto}://{original.host}"
    page = reverse("waiting-room", args=[event_id])
    return f"{base}{page}?return={quote(_return_url(original), safe='')}"


def _deny(request: HttpRequest, event_id: int, original: OriginalRequest, reason: str) -> HttpResponse:
    location = waiting_room_url(event_id, original)
    headers = {"X-QMS-Reason": reason, "X-QMS-Event": str(event_id)}
    if request.GET.get("deny") == "redirect":  # Traefik and Caddy pass a non-2xx answer on to the visitor
        return _answer(302, {**headers, "Location": location})
    return _answer(401, {**headers, "X-QMS-Location": location})


def _from_token(token: str, guarded: GuardedEvent) -> cookies.GateSession:
    try:
        claims = tokens.decode(token, event_id=guarded.id)
    except TokenRefused as refused:
        raise Denied({"token_wrong_event": "gate_wrong_event", "token_expired": "gate_session_expired"}.get(
            refused.code, "gate_token_invalid")) from None
    return cookies.GateSession(event_id=claims["evt"], user_id=int(claims["sub"]), jti=claims["jti"],
                               issued_at=claims["iat"], expires_at=claims["exp"])


def _from_cookie(value: str, guarded: GuardedEvent, original: OriginalRequest, now: float) -> cookies.GateSession:
    try:
        session = cookies.verify(value, original.host)
    except cookies.CookieInvalid:
        raise Denied("gate_cookie_invalid") from None
    if session.event_id != guarded.id:
        raise Denied("gate_wrong_event")
    if now >= session.expires_at:
        raise Denied("gate_session_expired")
    return session


def _session(guarded: GuardedEvent, original: OriginalRequest, now: float) -> tuple[cookies.GateSession, bool]:
    """The session the visitor presents, and whether it came as a token (to be exchanged for a cookie)."""
    if RETURN_TOKEN_PARAMETER in original.query:
        token = dict(parse_qsl(original.query)).get(RETURN_TOKEN_PARAMETER)
        if token:  # the first request after the waiting room: it wins over an older cookie
            return _from_token(token, guarded), True
    value = original.request.COOKIES.get(cookies.cookie_name(guarded.id))
    if not value:
        raise Denied("gate_no_admission")
    return _from_cookie(value, guarded, original, now), False


def _check(guarded: GuardedEvent, session: cookies.GateSession, now: float) -> None:
    """The one store round trip: ended? idle? (and a sliding session's activity recorded)."""
    answer = get_store().check_session(
        guarded.id, session.jti, now=now, issued_at=session.issued_at,
        idle_seconds=guarded.session_idle_seconds if guarded.sliding else None, until=session.expires_at)
    if answer == SessionCheck.ENDED:
        raise Denied("gate_session_ended")
    if answer == SessionCheck.IDLE:
        raise Denied("gate_session_idle")


@csrf_exempt
def auth(request: HttpRequest) -> HttpResponse:
    """Forward auth: 200 (admitted or bypassed), 401/302 to the waiting room, 403 for no route."""
    original = OriginalRequest.read(request)
    guarded = gate_routes.current().lookup(original.host, original.path)
    if guarded is None:
        return _answer(403, {"X-QMS-Reason": "gate_no_route"})
    rule_id = first_bypass(guarded.bypass, original)
    if rule_id is not None:
        return _answer(200, {"X-QMS-Bypass": str(rule_id), "X-QMS-Event": str(guarded.id)})
    now = clock()
    try:
        session, exchanged = _session(guarded, original, now)
        _check(guarded, session, now)
    except Denied as denied:
        return _deny(request, guarded.id, original, denied.reason)
    identity = {"X-QMS-User": str(session.user_id), "X-QMS-Event": str(guarded.id), "X-QMS-Admission": session.jti}
    if exchanged and request.GET.get("deny") == "redirect":
        # Traefik and Caddy copy a 2xx's headers into the request, not a Set-Cookie into the answer; a non-2xx
        # they pass to the visitor whole: a redirect to the same URL without the token, carrying the cookie.
        response = _answer(302, {**identity, "Location": _return_url(original)})
    else:
        response = _answer(200, identity)
    if exchanged:
        response.set_cookie(cookies.cookie_name(guarded.id), cookies.sign(session, original.host),
                            max_age=max(1, int(session.expires_at - now)), path="/", httponly=True,
                            samesite="Lax", secure=original.proto == "https")
    return response


def _named_session(request: HttpRequest, original: OriginalRequest) -> tuple[Admission, float] | None:
    """The admission a revoke names, and its token's end: the gate cookie of the route's event, or the
    `X-QMS-Admission` header (the jti the gate gave the origin, or the admission token itself)."""
    guarded = gate_routes.current().lookup(original.host, original.path)
    value = guarded and request.COOKIES.get(cookies.cookie_name(guarded.id))
    if value:
        try:
            session = cookies.verify(value, original.host)
        except cookies.CookieInvalid:
            return None
        row = Admission.objects.filter(event_id=session.event_id, jti=session.jti).first()
        return (row, session.expires_at) if row else None
    named = request.headers.get("X-QMS-Admission", "").strip()
    if not named:
        return None
    try:
        jti = tokens.decode(named, verify_exp=False)["jti"] if named.count(".") == 2 else named
    except TokenRefused:
        return None
    row = Admission.objects.filter(jti=jti).first()
    if row is None:
        return None
    return row, tokens.decode(row.token, verify_exp=False)["exp"]


@csrf_exempt
@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    """End the session the request names: its slot is freed at once and its cookie refused from now on."""
    original = OriginalRequest.read(request)
    named = _named_session(request, original)
    if named is None:
        return _answer(404, {"X-QMS-Reason": "gate_no_admission"})
    row, token_expires_at = named
    admission.release_admission(row, token_expires_at=token_expires_at)
    return _answer(204, {"X-QMS-Event": str(row.event_id), "X-QMS-Admission": row.jti})
