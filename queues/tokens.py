"""Admission tokens: ES256 JWTs signed with the current key, verified against every listed key.

`QMS_SIGNING_KEY` (PEM) signs; `QMS_EXTRA_VERIFICATION_KEYS` keeps retired
public keys in the JWKS until their tokens expire. With no key configured an
ephemeral one is generated per process (embedded default) and logged as such.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from jwt.algorithms import ECAlgorithm

logger = logging.getLogger(__name__)

ALGORITHM = "ES256"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "evt", "iat", "nbf", "exp", "jti"]


class TokenError(Exception):
    """A token that must be refused; `code` is stable for clients to branch on."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    """The public key as a JWK with its RFC 7638 thumbprint as `kid`."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def generate_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _split_pems(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.strip().splitlines():
        current.append(line)
        if line.startswith("-----END"):
            blocks.append("\n".join(current) + "\n")
            current = []
    return blocks


@dataclass(frozen=True)
class Keyring:
    signing_key: ec.EllipticCurvePrivateKey
    signing_kid: str
    verification_keys: dict[str, ec.EllipticCurvePublicKey]
    jwks: dict

    @classmethod
    def from_pems(cls, private_pem: str, extra_public_pems: str = "") -> Keyring:
        private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
            raise ValueError("QMS_SIGNING_KEY must be an EC P-256 private key (ES256)")
        public_keys = [private_key.public_key()]
        for pem in _split_pems(extra_public_pems):
            loaded = serialization.load_pem_public_key(pem.encode())
            if not isinstance(loaded, ec.EllipticCurvePublicKey):
                raise ValueError("QMS_EXTRA_VERIFICATION_KEYS must hold EC P-256 public keys")
            public_keys.append(loaded)
        jwks = [public_jwk(key) for key in public_keys]
        return cls(
            signing_key=private_key,
            signing_kid=jwks[0]["kid"],
            verification_keys={jwk["kid"]: key for jwk, key in zip(jwks, public_keys, strict=False)},
            jwks={"keys": jwks},
        )


_keyring: Keyring | None = None
_lock = threading.Lock()


def keyring() -> Keyring:
    global _keyring
    if _keyring is None:
        with _lock:
            if _keyring is None:
                pem = settings.QMS_SIGNING_KEY
                if not pem:
                    pem = generate_private_pem()
                    logger.warning(
                        "QMS_SIGNING_KEY is not set: signing admission tokens with an EPHEMERAL key "
                        "generated for this process; tokens will not verify after a restart."
                    )
                _keyring = Keyring.from_pems(pem, settings.QMS_EXTRA_VERIFICATION_KEYS)
    return _keyring


def reset_keyring() -> None:
    """Reload keys from settings on next use (after a rotation, or in tests)."""
    global _keyring
    _keyring = None


def sign(claims: dict) -> str:
    ring = keyring()
    return jwt.encode(claims, ring.signing_key, algorithm=ALGORITHM, headers={"kid": ring.signing_kid})


def jwks() -> dict:
    return keyring().jwks


_FAILURES = [
    (jwt.ExpiredSignatureError, "token_expired", "The token has expired."),
    (jwt.ImmatureSignatureError, "token_not_yet_valid", "The token is not valid yet."),
    (jwt.InvalidAudienceError, "token_wrong_audience", "The token is for another audience."),
    (jwt.InvalidIssuerError, "token_wrong_issuer", "The token was issued by someone else."),
    (jwt.MissingRequiredClaimError, "token_invalid", "The token lacks a required claim."),
]


def decode(token: str, *, event_id: int | None = None, verify_exp: bool = True) -> dict:
    """The verified claims of an admission token, or TokenError with a stable code."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenError("token_malformed", "The token is not a compact JWS.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("token_malformed", "The token header cannot be read.") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError("token_invalid", f"Only {ALGORITHM} tokens are accepted.")
    key = keyring().verification_keys.get(header.get("kid"))
    if key is None:
        raise TokenError("token_unknown_key", "The token was signed with a key this service does not know.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.QMS_TOKEN_AUDIENCE,
            issuer=settings.QMS_TOKEN_ISSUER,
            options={"require": REQUIRED_CLAIMS, "verify_exp": verify_exp},
        )
    except jwt.PyJWTError as exc:
        for error_type, code, detail in _FAILURES:
            if isinstance(exc, error_type):
                raise TokenError(code, detail) from None
        raise TokenError("token_invalid", "The token signature or claims are invalid.") from None
    if event_id is not None and claims.get("evt") != event_id:
        raise TokenError("token_wrong_event", "The token admits to another event.")
    return claims
