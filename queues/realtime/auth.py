"""WebSocket authentication: the session cookie (browsers), a SimpleJWT access token, or an OpenID Connect
provider's access token (queues/oidc.py) (API clients), and the browser `Origin` check.

API clients send the token in `?token=` or as a subprotocol: they offer
`["qms.jwt", "<access token>"]` and the server selects `qms.jwt`. A session
cookie, when there is one, is tried first; a socket without one skips Channels'
cookie and session layers (an empty session opened on a worker thread per
connect, for nothing). A token's user comes from the
per-process memory of active users (queues/known_users.py) when it was looked up
in the last minute: a reconnect, a second device or a storm of retries costs no
query and no thread. Otherwise the lookup is one trip to a worker thread, not to
Channels' shared sync thread: during an on-sale storm a thousand sockets a second
authenticate in parallel. A session is read on every connect (a logout must end
it); only its user row is remembered.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, UserLazyObject, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from queues import oidc
from queues.authentication import token_user_id
from queues.known_users import known_users
from queues.refusals import Refusal

JWT_SUBPROTOCOL = "qms.jwt"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def token_from_scope(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    protocols = scope.get("subprotocols") or []
    if JWT_SUBPROTOCOL in protocols:
        others = [p for p in protocols if p != JWT_SUBPROTOCOL]
        return others[0] if others else None
    return None


def _user_id_of(raw: str):
    """The user id of a valid SimpleJWT access token (HS256: cheap enough for the event loop), else None."""
    try:
        return token_user_id(AccessToken(raw))
    except TokenError:
        return None


def _provider_user(raw: str):
    """The local user of a provider token, verified with a fetch of the JWKS if need be; None if refused."""
    try:
        return oidc.local_user(oidc.provider().claims(raw))
    except Refusal:  # the socket closes 4401 like any anonymous one
        return None


provider_user = database_sync_to_async(_provider_user, thread_sensitive=False)
load_user = database_sync_to_async(known_users.load, thread_sensitive=False)


async def user_for_token(raw: str):
    """The active user a token names: remembered (no query, no thread), else one trip to a worker thread."""
    if oidc.is_provider_token(raw):
        try:  # with the provider's key already cached the whole check runs here
            user = oidc.remembered_user(oidc.provider().claims(raw, fetch=False))
        except oidc.KeyNotCached:
            user = None
        except Refusal:
            return AnonymousUser()
        return user or await provider_user(raw) or AnonymousUser()
    user_id = _user_id_of(raw)
    if user_id is None:
        return AnonymousUser()
    return known_users.get(user_id) or await load_user(user_id) or AnonymousUser()


def _session_user(scope):
    """Channels' `get_user`, with the user remembered: the session itself is read every time (a logout, a
    password change ends the socket's login at once), the user row only once a minute."""
    session = scope["session"]
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return AnonymousUser()
    if backend_path != MODEL_BACKEND:  # another backend may look users up its own way
        return get_user.func(scope)
    user = known_users.load(user_id)
    if user is None:
        return AnonymousUser()
    session_hash = session.get(HASH_SESSION_KEY)
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        session.flush()
        return AnonymousUser()
    return user


session_user = database_sync_to_async(_session_user, thread_sensitive=False)


class SessionOrJwtAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware (scope["user"]): the session's user, else the access token's. A socket with no
    session cookie has no scope["session"]."""

    def populate_scope(self, scope):
        scope.setdefault("user", UserLazyObject())

    async def resolve_scope(self, scope):
        raw = token_from_scope(scope)
        session = scope.get("session")
        user = await session_user(scope) if session is not None and session.session_key else AnonymousUser()
        if raw and not user.is_authenticated:
            user = await user_for_token(raw)
        scope["user"]._wrapped = user


def has_session_cookie(scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"cookie" and settings.SESSION_COOKIE_NAME in parse_cookie(value.decode("latin-1")):
            return True
    return False


class SessionOrJwtAuthMiddlewareStack:
    """Channels' cookie and session layers for a socket that carries a session cookie (a browser), none for one
    that does not (`?token=`, the subprotocol): without a cookie they only open an empty session on a worker
    thread, a thread trip per connect in a storm of token sockets for nothing."""

    def __init__(self, inner):
        self.by_token = SessionOrJwtAuthMiddleware(inner)
        self.by_cookie = CookieMiddleware(SessionMiddleware(self.by_token))

    async def __call__(self, scope, receive, send):
        app = self.by_cookie if has_session_cookie(scope) else self.by_token
        return await app(scope, receive, send)


def origin_allowed(scope) -> bool:
    """Browsers send Origin: it must name one of ALLOWED_HOSTS. Clients without Origin carry no cookie risk."""
    origin = dict(scope.get("headers", [])).get(b"origin")
    if origin is None:
        return True
    value = origin.decode("latin-1")
    if "://" not in value:
        return False
    host, _port = split_domain_port(value.split("://", 1)[1].split("/", 1)[0])
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)
