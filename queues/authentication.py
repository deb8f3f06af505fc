"""DRF authentication of SimpleJWT access tokens with the user taken from this process's memory of active
users (queues/known_users.py), as the socket does: a fan's status poll costs no user query.

Same semantics as the socket's (docs/DEPLOYMENT.md): a user deactivated or deleted in this process is refused
at once, in another process within the memory's 60 s. A token that names no remembered active user goes to
SimpleJWT's own lookup, so its refusals keep their codes (`user_not_found`, `user_inactive`).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from .known_users import known_users


def token_user_id(token: Token):
    """The user id a valid SimpleJWT token names, as the primary key's own type (SimpleJWT writes a string), or
    None when it names none."""
    try:
        return get_user_model()._meta.get_field(api_settings.USER_ID_FIELD).to_python(
            token[api_settings.USER_ID_CLAIM])
    except (KeyError, ValidationError):
        return None


class RememberedUserJWTAuthentication(JWTAuthentication):
    """SimpleJWT's `JWTAuthentication`, its user read from the per-process memory of active users."""

    def get_user(self, validated_token: Token):
        # The memory is keyed by primary key, and knows nothing of password hashes: other settings keep SimpleJWT's.
        if api_settings.CHECK_REVOKE_TOKEN or api_settings.USER_ID_FIELD != get_user_model()._meta.pk.name:
            return super().get_user(validated_token)
        user_id = token_user_id(validated_token)
        user = known_users.load(user_id) if user_id is not None else None
        return user if user is not None else super().get_user(validated_token)


class RememberedUserJWTScheme(SimpleJWTScheme):
    """The OpenAPI schema describes it as SimpleJWT's bearer token (`jwtAuth`), which it is."""

    target_class = "queues.authentication.RememberedUserJWTAuthentication"
