"""WebSocket authentication: the session cookie (browsers) or a SimpleJWT access token (API clients), and
the browser `Origin` check.

API clients send the token in `?token=` or as a subprotocol: they offer
`["qms.jwt", "<access token>"]` and the server selects `qms.jwt`. A session
cookie, when there is one, is tried first. Either way the user is looked up
in one trip to a worker thread, not on Channels' shared sync thread: during an
on-sale storm a thousand sockets a second authenticate in parallel.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

JWT_SUBPROTOCOL = "qms.jwt"


def token_from_scope(scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    protocols = scope.get("subprotocols") or []
    if JWT_SUBPROTOCOL in protocols:
        others = [p for p in protocols if p != JWT_SUBPROTOCOL]
        return others[0] if others else None
    return None


def _user_for_token(raw: str):
    try:
        token = AccessToken(raw)
        user_id = token[api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError):
        return AnonymousUser()
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}, is_active=True).first()
    return user or AnonymousUser()


user_for_token = database_sync_to_async(_user_for_token, thread_sensitive=False)
session_user = database_sync_to_async(get_user.func, thread_sensitive=False)  # Channels' own lookup


class SessionOrJwtAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware (scope["user"]): the session's user, else the access token's."""

    async def resolve_scope(self, scope):
        raw = token_from_scope(scope)
        user = await session_user(scope) if scope["session"].session_key else AnonymousUser()
        if raw and not user.is_authenticated:
            user = await user_for_token(raw)
        scope["user"]._wrapped = user


def SessionOrJwtAuthMiddlewareStack(inner):  # noqa: N802 (named like Channels' AuthMiddlewareStack)
    return CookieMiddleware(SessionMiddleware(SessionOrJwtAuthMiddleware(inner)))


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
