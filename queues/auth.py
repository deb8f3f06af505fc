"""WebSocket authentication for API clients: a SimpleJWT access token in `?token=` or the subprotocol.

Browsers authenticate with the session cookie (Channels' AuthMiddlewareStack
runs first); this middleware only fills in a user when there is none yet.
Clients that send the token as a subprotocol offer `["qms.jwt", "<access token>"]`
and the server selects `qms.jwt`.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
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


@database_sync_to_async
def user_for_token(raw: str):
    try:
        token = AccessToken(raw)
        user_id = token[api_settings.USER_ID_CLAIM]
    except (TokenError, KeyError):
        return AnonymousUser()
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}, is_active=True).first()
    return user or AnonymousUser()


class JwtAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            raw = token_from_scope(scope)
            if raw:
                scope = {**scope, "user": await user_for_token(raw), "auth": "jwt"}
        return await super().__call__(scope, receive, send)
