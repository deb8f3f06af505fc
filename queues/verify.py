"""Admission-token checks for the reservation service: offline from the QMS JWKS, online redemption.

Needs only PyJWT, cryptography and the standard library (no QMS database, no
Django), so the reservation service can import this file or copy it. The Django
middleware and the DRF permission at the end use Django when they run.

    verifier = AdmissionVerifier("https://queue.example/.well-known/jwks.json")
    claims = verifier.verify(token, event_id=7)   # offline: signature, iss, aud, evt, nbf, exp
    claims = verifier.redeem(token, event_id=7)   # online: single use (code token_already_redeemed on replay)

The JWKS is cached (`Cache-Control: max-age` of the response, or
`cache_seconds`); a token signed with a key the cache does not know triggers
one refetch (key rotation), at most once per `min_refetch_seconds`. If the JWKS
cannot be fetched, the keys already known keep verifying.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import jwt

ALGORITHM = "ES256"
# The admission token's claims, every one required; QMS signs exactly these (queues.tokens.claims_for).
REQUIRED_CLAIMS = ["iss", "aud", "sub", "evt", "iat", "nbf", "exp", "jti"]
DEFAULT_CACHE_SECONDS = 300.0
VERIFY_PATH = "/api/admissions/verify/"

# Every code a token check refuses with, and what it means: QMS's own verification (queues.tokens) refuses with
# the same codes, and its documented error list includes these (queues.errors.ERROR_CODES), so both paths
# branch alike.
TOKEN_CODES = {
    "token_malformed": "The token is not a compact JWS.",
    "token_invalid": "The token signature or claims are invalid.",
    "token_unknown_key": "The token was signed with a key QMS does not list.",
    "token_expired": "The token has expired.",
    "token_not_yet_valid": "The token is not valid yet.",
    "token_wrong_audience": "The token is for another audience.",
    "token_wrong_issuer": "The token was issued by someone else.",
    "token_wrong_event": "The token admits to another event.",
}
_FAILURES = [
    (jwt.ExpiredSignatureError, "token_expired", TOKEN_CODES["token_expired"]),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", TOKEN_CODES["token_not_yet_valid"]),
    (jwt.InvalidAudienceError, "token_wrong_audience", TOKEN_CODES["token_wrong_audience"]),
    (jwt.InvalidIssuerError, "token_wrong_issuer", TOKEN_CODES["token_wrong_issuer"]),
    (jwt.MissingRequiredClaimError, "token_invalid", "The token lacks a required claim."),
]


class AdmissionTokenError(Exception):
    """A refused admission token. `code` is stable (`token_expired`, `token_already_redeemed`, ...)."""

    def __init__(self, code: str, detail: str, status: int = 403):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status  # the HTTP status a protected view answers with


class JwksUnavailable(AdmissionTokenError):
    """No key is known and the JWKS could not be fetched: nothing can be verified."""

    def __init__(self, detail: str):
        super().__init__("jwks_unavailable", detail, status=503)


def decode_admission_token(token: str, key_for_kid: Callable[[str], object], *, audience: str, issuer: str,
                           leeway: float = 0.0, verify_exp: bool = True, event_id: int | None = None) -> dict:
    """Verify an admission token with the key `key_for_kid(kid)` returns; AdmissionTokenError with a stable code.

    The one implementation of the checks, shared by QMS itself (queues.tokens) and this helper.
    `key_for_kid` raises AdmissionTokenError (`token_unknown_key`) for a key it does not know.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise AdmissionTokenError("token_malformed", "The token is not a compact JWS.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AdmissionTokenError("token_malformed", "The token header cannot be read.") from None
    if header.get("alg") != ALGORITHM:  # never let the token choose HS256 or none
        raise AdmissionTokenError("token_invalid", f"Only {ALGORITHM} tokens are accepted.")
    key = key_for_kid(str(header.get("kid")))
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience, issuer=issuer, leeway=leeway,
                            options={"require": REQUIRED_CLAIMS, "verify_exp": verify_exp})
    except jwt.PyJWTError as exc:
        for error_type, code, detail in _FAILURES:
            if isinstance(exc, error_type):
                raise AdmissionTokenError(code, detail) from None
        raise AdmissionTokenError("token_invalid", "The token signature or claims are invalid.") from None
    if event_id is not None and claims.get("evt") != event_id:
        raise AdmissionTokenError("token_wrong_event", "The token admits to another event.")
    return claims


def _max_age(cache_control: str | None) -> float | None:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    return float(match.group(1)) if match else None


class JwksCache:
    """Public keys by `kid` (QMS's, or an OIDC provider's), fetched from the JWKS URL, refreshed on expiry or on an
    unknown `kid`."""

    def __init__(self, url: str, *, cache_seconds: float | None = None, min_refetch_seconds: float = 10.0,
                 timeout: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 algorithms: tuple[str, ...] = (ALGORITHM,)):
        self.url = url
        self.algorithms = algorithms  # keys for other algorithms (an OIDC provider's encryption keys) are skipped
        self.cache_seconds = cache_seconds  # None: the response's max-age (else DEFAULT_CACHE_SECONDS)
        self.min_refetch_seconds = min_refetch_seconds
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0  # JWKS requests made (to watch the cache work)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fresh_until = float("-inf")
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()

    def known(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid` if the cache holds it fresh, else None: never a fetch (safe on an event loop)."""
        key = self._keys.get(kid)
        return key if key is not None and self.clock() < self._fresh_until else None

    def key(self, kid: str) -> jwt.PyJWK:
        """The public key `kid`; raises AdmissionTokenError (`token_unknown_key`) or JwksUnavailable."""
        now = self.clock()
        key = self._keys.get(kid)
        if key is not None and now < self._fresh_until:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None or self.clock() >= self._fresh_until:
                self._refresh()
            key = self._keys.get(kid)
        if key is None:
            if not self._keys:
                raise JwksUnavailable(f"No verification keys could be fetched from {self.url}.")
            raise AdmissionTokenError("token_unknown_key", "The token was signed with a key QMS does not list.")
        return key

    def _refresh(self) -> None:
        """Fetch the JWKS unless one was fetched moments ago; on failure keep the keys we have."""
        now = self.clock()
        if now - self._last_attempt < self.min_refetch_seconds:
            return
        self._last_attempt = now
        self.fetches += 1
        try:
            request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                document = json.loads(response.read())
                max_age = _max_age(response.headers.get("Cache-Control"))
            keys = {}
            for entry in document.get("keys", []):
                try:  # no `alg`: inferred from the key type (EC P-256: ES256, RSA: RS256)
                    key = jwt.PyJWK(entry, algorithm=entry.get("alg"))
                except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                    continue  # a key of a kind we cannot use does not hide the others
                if entry.get("kid") and entry.get("use", "sig") == "sig" and key.algorithm_name in self.algorithms:
                    keys[entry["kid"]] = key
        except (OSError, ValueError, AttributeError, jwt.PyJWTError):
            return  # stale keys beat no keys: QMS being down must not stop verification
        ttl = self.cache_seconds if self.cache_seconds is not None else (
            max_age if max_age is not None else DEFAULT_CACHE_SECONDS)
        self._keys = keys
        self._fresh_until = now + ttl


class AdmissionVerifier:
    """Verifies QMS admission tokens: offline against the JWKS, and online for single-use redemption."""

    def __init__(self, jwks_url: str, *, issuer: str = "qms", audience: str = "reservation",
                 verify_url: str | None = None, leeway: float = 0.0, cache_seconds: float | None = None,
                 min_refetch_seconds: float = 10.0, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.timeout = timeout
        self.keys = JwksCache(jwks_url, cache_seconds=cache_seconds, min_refetch_seconds=min_refetch_seconds,
                              timeout=timeout, clock=clock)
        parts = urlsplit(jwks_url)
        self.verify_url = verify_url or urlunsplit((parts.scheme, parts.netloc, VERIFY_PATH, "", ""))

    def verify(self, token: str, *, event_id: int | None = None) -> dict:
        """The token's claims if QMS signed it for this audience (and event); AdmissionTokenError otherwise."""
        return decode_admission_token(token, self.keys.key, audience=self.audience, issuer=self.issuer,
                                      leeway=self.leeway, event_id=event_id)

    def redeem(self, token: str, *, event_id: int | None = None) -> dict:
        """Verify offline, then use the token up at QMS (`POST /api/admissions/verify/`, `redeem: true`).

        A replayed token raises AdmissionTokenError with code `token_already_redeemed` (status 409).
        """
        claims = self.verify(token, event_id=event_id)
        body = {"token": token, "redeem": True, **({"event": event_id} if event_id is not None else {})}
        request = urllib.request.Request(self.verify_url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                return claims
        except urllib.error.HTTPError as error:
            try:
                reply = json.loads(error.read() or b"{}")
            except ValueError:
                reply = {}
            if error.code >= 500 or "code" not in reply:
                raise AdmissionTokenError("redeem_unavailable", f"QMS answered {error.code}.", status=503) from None
            raise AdmissionTokenError(reply["code"], reply.get("detail", ""), status=error.code) from None
        except OSError as error:
            raise AdmissionTokenError("redeem_unavailable", f"QMS cannot be reached: {error}", status=503) from None


# --- Django and DRF -------------------------------------------------------------------
#
# Settings of the reservation service (not QMS's):
#
#     QMS_ADMISSION = {
#         "JWKS_URL": "https://queue.example/.well-known/jwks.json",
#         "ISSUER": "qms", "AUDIENCE": "reservation",   # as QMS_TOKEN_ISSUER / QMS_TOKEN_AUDIENCE
#         "EVENT_ID": 7,                                 # optional: only this event's tokens
#         "PROTECTED_PATHS": ["/reserve/"],              # middleware: path prefixes that need a token
#         "REDEEM": True,                                # middleware: redeem a token the first time it is seen
#     }

TOKEN_QUERY_PARAMETER = "token"  # QMS redirects to reservation_url?token=<jwt>
TOKEN_HEADER = "HTTP_X_ADMISSION_TOKEN"  # `X-Admission-Token: <jwt>` from API clients
SESSION_KEY = "qms_admission_token"

_verifiers: dict[tuple, AdmissionVerifier] = {}


def verifier_from_settings() -> tuple[AdmissionVerifier, dict]:
    """One verifier per configuration (its JWKS cache is shared by every request of the process)."""
    from django.conf import settings

    config = dict(settings.QMS_ADMISSION)
    identity = (config["JWKS_URL"], config.get("ISSUER", "qms"), config.get("AUDIENCE", "reservation"),
                config.get("VERIFY_URL"))
    if identity not in _verifiers:
        _verifiers[identity] = AdmissionVerifier(config["JWKS_URL"], issuer=identity[1], audience=identity[2],
                                                 verify_url=identity[3])
    return _verifiers[identity], config


def token_from_request(request) -> str | None:
    """The token from `?token=`, the `X-Admission-Token` header, in that order."""
    return request.GET.get(TOKEN_QUERY_PARAMETER) or request.META.get(TOKEN_HEADER) or None


class AdmissionTokenMiddleware:
    """Lets a request under `PROTECTED_PATHS` through only with a valid admission token.

    The token comes from `?token=` or `X-Admission-Token`, else from the session
    (kept there after the first visit, and verified again on every request, so it
    stops working when it expires). With `REDEEM`, a token is redeemed online the
    first time it is presented. The verified claims are `request.admission`.
    Refusals are 403 (409 for a replayed token) `{"code", "detail"}`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.http import JsonResponse

        verifier, config = verifier_from_settings()
        if not any(request.path.startswith(prefix) for prefix in config.get("PROTECTED_PATHS", ["/"])):
            return self.get_response(request)
        session = getattr(request, "session", None)
        presented = token_from_request(request)
        token = presented or (session.get(SESSION_KEY) if session is not None else None)
        if token is None:
            return JsonResponse({"code": "admission_required", "detail": "An admission token is required."},
                                status=403)
        try:
            first_visit = presented is not None and (session is None or session.get(SESSION_KEY) != presented)
            if config.get("REDEEM") and first_visit:
                request.admission = verifier.redeem(token, event_id=config.get("EVENT_ID"))
            else:
                request.admission = verifier.verify(token, event_id=config.get("EVENT_ID"))
        except AdmissionTokenError as refused:
            return JsonResponse({"code": refused.code, "detail": refused.detail}, status=refused.status)
        if session is not None:
            session[SESSION_KEY] = token
        return self.get_response(request)


try:  # DRF is optional: without it the permission below is still usable by duck typing
    from rest_framework.permissions import BasePermission as _PermissionBase
except ImportError:  # pragma: no cover - DRF not installed
    _PermissionBase = object


class HasAdmissionToken(_PermissionBase):
    """DRF permission: the request carries a valid admission token (`?token=` or `X-Admission-Token`).

    The claims become `request.admission`. Offline only: redeem in the view
    (`verifier_from_settings()[0].redeem(token)`) when the booking is made.
    """

    message = "A valid admission token is required."
    code = "admission_required"

    def has_permission(self, request, view) -> bool:
        token = token_from_request(request)
        if token is None:
            return False
        verifier, config = verifier_from_settings()
        try:
            request.admission = verifier.verify(token, event_id=config.get("EVENT_ID"))
        except AdmissionTokenError as refused:
            self.message, self.code = refused.detail, refused.code
            return False
        return True
