"""The gate's session cookie: the admission, signed so the gate verifies it offline on every request.

Value `<event>.<user>.<jti>.<iat>.<exp>.<mac>`, the MAC an HMAC-SHA256 over those fields and the protected host
with a key derived from `QMS_GATE_COOKIE_KEY` (or SECRET_KEY): a cookie changed in any field, or carried to
another host or event, fails the constant-time comparison. `exp` is the session's hard end; whether it ended
earlier (released, revoked, idle) is the store's answer (`check_session`), not the cookie's.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

COOKIE_PREFIX = "qms_gate_"
_VERSION = b"qms-gate-cookie-v1"


class CookieInvalid(ValueError):
    """Malformed, or its MAC does not match (forged, tampered, or from another host)."""


@dataclass(frozen=True)
class GateSession:
    """What a gate cookie (or the admission token it was exchanged for) names."""

    event_id: int
    user_id: int
    jti: str
    issued_at: int  # the admission's iat
    expires_at: int  # the session's hard end (the token's exp)


def cookie_name(event_id: int) -> str:
    return f"{COOKIE_PREFIX}{event_id}"


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _VERSION, hashlib.sha256).digest()


def _mac(fields: str, host: str) -> str:
    key = _key(settings.QMS_GATE_COOKIE_KEY or settings.SECRET_KEY)
    digest = hmac.new(key, f"{fields}|{host}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _fields(session: GateSession) -> str:
    return f"{session.event_id}.{session.user_id}.{session.jti}.{session.issued_at}.{session.expires_at}"


def sign(session: GateSession, host: str) -> str:
    """The cookie value for `session` on `host` (as routes store it)."""
    fields = _fields(session)
    return f"{fields}.{_mac(fields, host)}"


def verify(value: str, host: str) -> GateSession:
    """The session a cookie names, if it was signed for `host`; CookieInvalid otherwise. Expiry is the caller's."""
    parts = value.split(".")
    if len(parts) != 6 or len(value) > 300:
        raise CookieInvalid("malformed")
    fields, mac = value.rpartition(".")[::2]
    if not hmac.compare_digest(mac.encode(), _mac(fields, host).encode()):
        raise CookieInvalid("bad signature")
    try:
        return GateSession(event_id=int(parts[0]), user_id=int(parts[1]), jti=parts[2], issued_at=int(parts[3]),
                           expires_at=int(parts[4]))
    except ValueError:
        raise CookieInvalid("malformed") from None
