"""Fans of a platform with its own login arrive with its OpenID Connect provider's access token: verified
offline against the provider's JWKS (issuer, audience, expiry, signature; RS256 or ES256), no password hashed.

Configured by `QMS_OIDC_ISSUER`, `QMS_OIDC_AUDIENCE` and `QMS_OIDC_JWKS_URL` (off while the issuer is empty).
The ledger needs a local user (`Admission.user`): each provider subject gets one, created on its first
arrival as username `oidc:<sha256(iss, sub)>` with no usable password, and found again by that unique
username afterwards (one row per fan, whatever the race). `OidcAuthentication` serves DRF; the socket's
middleware (queues/realtime/auth.py) calls `provider()` and `local_user` itself.
"""

from __future__ import annotations

import hashlib

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework_simplejwt.settings import api_settings as simplejwt_settings

from .known_users import known_users
from .refusals import IdentityProviderUnavailable, IdentityTokenRefused
from .verify import AdmissionTokenError, JwksCache, JwksUnavailable

ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp"]
LEEWAY_SECONDS = 30.0  # the provider's clock and ours may differ a little
MIN_REFETCH_SECONDS = 10.0  # an unknown kid refetches the JWKS at most this often: junk tokens cannot flood the IdP
USERNAME_PREFIX = "oidc:"

_FAILURES = [
    (jwt.ExpiredSignatureError, "oidc_token_expired"),
    (jwt.InvalidAudienceError, "oidc_wrong_audience"),
    (jwt.InvalidIssuerError, "oidc_wrong_issuer"),
]


def _refused(code: str) -> IdentityTokenRefused:
    return IdentityTokenRefused(IdentityTokenRefused.codes[code], code=code)


class KeyNotCached(Exception):
    """`claims(fetch=False)` needs a key the cache does not hold fresh: verify again where blocking is fine."""


class OidcProvider:
    """One trusted provider: its issuer, the audience QMS expects, and its keys (fetched, cached)."""

    def __init__(self, issuer: str, audience: str, jwks_url: str, *, min_refetch_seconds: float = MIN_REFETCH_SECONDS,
                 leeway: float = LEEWAY_SECONDS):
        self.issuer, self.audience, self.leeway = issuer, audience, leeway
        self.keys = JwksCache(jwks_url, algorithms=ALGORITHMS, min_refetch_seconds=min_refetch_seconds)

    def claims(self, token: str, *, fetch: bool = True) -> dict:
        """The token's verified claims; IdentityTokenRefused (code says why) or IdentityProviderUnavailable.

        `fetch=False` never touches the network (raises KeyNotCached instead), for the socket's event loop.
        """
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refused("oidc_token_invalid") from None
        if header.get("alg") not in ALGORITHMS:  # `none`, or HS256 signed with a public key taken for a secret
            raise _refused("oidc_token_invalid")
        # Before any key is looked up: another issuer's tokens name kids we do not know, and must not refetch.
        if unverified.get("iss") != self.issuer:
            raise _refused("oidc_wrong_issuer")
        kid = str(header.get("kid"))
        try:
            key = self.keys.key(kid) if fetch else self.keys.known(kid)
        except JwksUnavailable:
            raise IdentityProviderUnavailable() from None
        except AdmissionTokenError:  # the JWKS, fetched afresh, does not list this kid
            raise _refused("oidc_unknown_key") from None
        if key is None:
            raise KeyNotCached(kid)
        try:
            # The key's own algorithm, not the header's: a token cannot pick how its key is used.
            return jwt.decode(token, key, algorithms=[key.algorithm_name], audience=self.audience,
                              issuer=self.issuer, leeway=self.leeway, options={"require": REQUIRED_CLAIMS})
        except jwt.PyJWTError as exc:
            for error_type, code in _FAILURES:
                if isinstance(exc, error_type):
                    raise _refused(code) from None
            raise _refused("oidc_token_invalid") from None


_providers: dict[tuple[str, str, str], OidcProvider] = {}


def provider() -> OidcProvider | None:
    """The configured provider (one per configuration, so its JWKS cache serves the whole process), or None."""
    if not settings.QMS_OIDC_ISSUER:
        return None
    identity = (settings.QMS_OIDC_ISSUER, settings.QMS_OIDC_AUDIENCE, settings.QMS_OIDC_JWKS_URL)
    if identity not in _providers:
        _providers[identity] = OidcProvider(*identity)
    return _providers[identity]


def is_provider_token(token: str) -> bool:
    """Whether OIDC is on and the token is not one of SimpleJWT's own (HS256 with QMS's secret): those are
    SimpleJWT's to check. Everything else, `alg: none` included, is the provider's to verify or refuse."""
    if provider() is None:
        return False
    try:
        return jwt.get_unverified_header(token).get("alg") != simplejwt_settings.ALGORITHM
    except jwt.PyJWTError:
        return False  # not a JWT at all: SimpleJWT refuses it as it always did


def username_for(claims: dict) -> str:
    """The local username of a provider subject: stable, unique per (issuer, subject), fits any `sub`."""
    digest = hashlib.sha256(f"{claims['iss']}\n{claims['sub']}".encode()).hexdigest()
    return USERNAME_PREFIX + digest[:40]


def remembered_user(claims: dict):
    """The subject's local user if this process saw it moments ago (no query), else None."""
    pk = known_users.pk_for(username_for(claims))
    return known_users.get(pk) if pk is not None else None


def local_user(claims: dict):
    """The subject's local user: remembered, else found or created (once, whatever the race) by its username.

    None when that user was deactivated in QMS.
    """
    user = remembered_user(claims)
    if user is not None:
        return user
    username = username_for(claims)
    known_users.loads += 1
    # get_or_create retries the get when a concurrent create wins the unique username: one row per fan.
    user, _created = get_user_model().objects.get_or_create(username=username,
                                                            defaults={"password": make_password(None)})
    if not user.is_active:
        return None
    known_users.remember(user, alias=username)
    return user


class OidcAuthentication(BaseAuthentication):
    """DRF: `Authorization: Bearer <provider access token>`; SimpleJWT's own tokens are left to it."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            return None
        token = header[1].decode("latin-1")
        if not is_provider_token(token):
            return None
        try:
            claims = provider().claims(token)
        except IdentityTokenRefused as refused:  # 401 with WWW-Authenticate, shaped {code, detail} by the handler
            raise exceptions.AuthenticationFailed(refused.detail, code=refused.code) from None
        user = local_user(claims)
        if user is None:
            raise exceptions.AuthenticationFailed("The token's user is deactivated.", code="user_inactive")
        return user, claims

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


class OidcAuthenticationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema's name for `OidcAuthentication` (a bearer JWT from the platform's identity provider)."""

    target_class = "queues.oidc.OidcAuthentication"
    name = "oidcAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token of the platform's OpenID Connect provider (QMS_OIDC_ISSUER)."}
