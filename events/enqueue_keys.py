"""What an invite-only event's `enqueue_key` may be: a shared HS256 secret, or the PEM public key of the
ticketing site's own key pair (ES256 for an EC P-256 key, RS256 for RSA). Read here once, for the check at
join (queues/entry.py) and for the validation of what an operator types (events/serializers.py)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MIN_SECRET_LENGTH = 32  # HS256 wants at least 256 bits of key (RFC 7518 §3.2); PyJWT warns below that
PEM_PUBLIC = "-----BEGIN PUBLIC KEY-----"


class UnusableKey(ValueError):
    """The text is not a key enqueue tokens can be verified with; the message says why, for the operator."""


def verification_key(text: str) -> tuple[object, list[str]]:
    """(key, algorithms) for PyJWT's `decode`: what the ticketing site may sign with, and nothing else."""
    text = (text or "").strip()
    if "PRIVATE KEY" in text:
        raise UnusableKey("Paste the public key: the private key stays with the ticketing site.")
    if text.startswith(PEM_PUBLIC):
        try:
            key = load_pem_public_key(text.encode())
        except ValueError:
            raise UnusableKey("The PEM public key cannot be read.") from None
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return key, ["ES256"]
        if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            return key, ["RS256"]
        raise UnusableKey("Use an EC P-256 (ES256) or an RSA key of 2048 bits or more (RS256).")
    if len(text) < MIN_SECRET_LENGTH:
        raise UnusableKey(f"A shared secret needs at least {MIN_SECRET_LENGTH} characters.")
    return text, ["HS256"]
