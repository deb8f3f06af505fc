"""Admission tokens: ES256 JWTs signed with the current key, verified against every listed key.

`QMS_SIGNING_KEY` (PEM) signs; `QMS_EXTRA_VERIFICATION_KEYS` keeps retired
public keys in the JWKS until their tokens expire. Or `QMS_SIGNING_KEY_DIR`: a
`KeyDirectory` shared by every process, rotated by `manage.py qms_rotate_key`
and re-read by each process within `KEY_DIRECTORY_CHECK_SECONDS`. With no key
configured (embedded default) one is generated once into
`QMS_GENERATED_SIGNING_KEY_FILE` (var/signing-key.pem) and logged as such, so
tokens outlive a restart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import ECAlgorithm

from .refusals import TokenRefused
from .verify import ALGORITHM, REQUIRED_CLAIMS, AdmissionTokenError, decode_admission_token

logger = logging.getLogger(__name__)


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
        jwks = list({jwk["kid"]: jwk for jwk in map(public_jwk, public_keys)}.values())  # a key listed twice once
        return cls(
            signing_key=private_key,
            signing_kid=jwks[0]["kid"],
            verification_keys={public_jwk(key)["kid"]: key for key in public_keys},
            jwks={"keys": jwks},
        )


def public_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# How often each process looks at the key directory for a rotation (one stat of three paths).
KEY_DIRECTORY_CHECK_SECONDS = 1.0


class KeyDirectory:
    """Keys on disk, shared by every process of a deployment (`QMS_SIGNING_KEY_DIR`).

    - `signing-key.pem`: the private key that signs now;
    - `next-signing-key.pem`: the private key that signs after the next rotation, already in the JWKS so
      verifiers that cache the JWKS know it before its first token;
    - `retired/<kid>.json`: `{kid, public_key, retired_at, verify_until}`: a former signing key, listed
      in the JWKS until `verify_until` (epoch seconds), when its last token has expired.

    Files are replaced atomically (`os.replace`), so a process reads either the old or the new set.
    """

    SIGNING = "signing-key.pem"
    NEXT = "next-signing-key.pem"
    RETIRED = "retired"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def version(self) -> tuple:
        """Changes whenever a rotation replaced a file (inode and mtime of the key files and retired folder)."""
        stamps = []
        for name in (self.SIGNING, self.NEXT, self.RETIRED):
            try:
                stat = os.stat(self.path / name)
                stamps.append((stat.st_ino, stat.st_mtime_ns))
            except FileNotFoundError:
                stamps.append(None)
        return tuple(stamps)

    def create_if_missing(self) -> bool:
        """A fresh directory gets its signing and next keys; the first process to get there wins."""
        created = False
        for name in (self.SIGNING, self.NEXT):
            if not (self.path / name).exists():
                created |= self._write(name, generate_private_pem(), replace=False)
        return created

    def retired(self, now: float) -> list[dict]:
        """Retired keys still to be listed (verify_until in the future)."""
        entries = []
        for file in sorted((self.path / self.RETIRED).glob("*.json")):
            entry = json.loads(file.read_text())
            if entry["verify_until"] > now:
                entries.append(entry)
        return entries

    def keyring(self, extra_public_pems: str = "") -> tuple[Keyring, float]:
        """The keyring, and when it next changes by itself (the first retired key to drop out)."""
        now = time.time()
        self.path.mkdir(parents=True, exist_ok=True)
        if self.create_if_missing():
            logger.info("signing key directory initialised", extra={"path": str(self.path)})
        retired = self.retired(now)
        publics = [public_pem(serialization.load_pem_private_key(pem.encode(), password=None))
                   for pem in [self._read(self.NEXT)] if pem]
        publics += [entry["public_key"] for entry in retired] + [extra_public_pems]
        ring = Keyring.from_pems(self._read(self.SIGNING), "\n".join(publics))
        return ring, min((entry["verify_until"] for entry in retired), default=float("inf"))

    def rotate(self, verify_retired_until: float) -> tuple[str, str]:
        """Retire the signing key (listed until `verify_retired_until`), promote the next, make a new next.

        Returns (retired kid, new signing kid). Callers serialise rotations (`rotation_lock`).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self.create_if_missing()
        current = serialization.load_pem_private_key(self._read(self.SIGNING).encode(), password=None)
        retired_kid = public_jwk(current.public_key())["kid"]
        (self.path / self.RETIRED).mkdir(exist_ok=True)
        # Retired first: no process can load a keyring without the key of tokens already out.
        self._write(f"{self.RETIRED}/{retired_kid}.json", json.dumps({
            "kid": retired_kid, "public_key": public_pem(current), "retired_at": time.time(),
            "verify_until": verify_retired_until,
        }, indent=2))
        os.replace(self.path / self.NEXT, self.path / self.SIGNING)
        self._write(self.NEXT, generate_private_pem())
        self.prune(time.time())
        signing = serialization.load_pem_private_key(self._read(self.SIGNING).encode(), password=None)
        return retired_kid, public_jwk(signing.public_key())["kid"]

    def prune(self, now: float) -> list[str]:
        """Delete retired keys whose tokens have all expired; returns their kids."""
        pruned = []
        for file in (self.path / self.RETIRED).glob("*.json"):
            if json.loads(file.read_text())["verify_until"] <= now:
                file.unlink(missing_ok=True)
                pruned.append(file.stem)
        return pruned

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except FileNotFoundError:
            return ""

    def _write(self, name: str, text: str, *, replace: bool = True) -> bool:
        """Write atomically, readable by the owner only; with replace=False only if the file is absent."""
        target = self.path / name
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            if replace:
                os.replace(temporary, target)
                return True
            try:
                os.link(temporary, target)  # fails if another process created it first
                return True
            except FileExistsError:
                return False
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


_keyring: Keyring | None = None
_keyring_version: tuple | None = None
_keyring_stale_at = float("inf")  # wall clock: a retired key drops out of the JWKS
_next_directory_check = 0.0
_lock = threading.Lock()


def key_directory() -> KeyDirectory | None:
    if not settings.QMS_SIGNING_KEY_DIR:
        return None
    if settings.QMS_SIGNING_KEY:
        raise ImproperlyConfigured("Set QMS_SIGNING_KEY_DIR or QMS_SIGNING_KEY(_FILE), not both.")
    return KeyDirectory(settings.QMS_SIGNING_KEY_DIR)


def _directory_changed(directory: KeyDirectory) -> bool:
    global _next_directory_check
    now = time.monotonic()
    if now < _next_directory_check:
        return False
    _next_directory_check = now + KEY_DIRECTORY_CHECK_SECONDS
    return directory.version() != _keyring_version or time.time() >= _keyring_stale_at


def generated_signing_key(path: Path) -> str:
    """The embedded default's key: generated into `path` the first time (owner-only; the first process to get
    there wins), then read back, so every restart and every process signs with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and KeyDirectory(path.parent)._write(path.name, generate_private_pem(), replace=False):
        logger.info("signing key generated", extra={"path": str(path)})
    logger.warning("QMS_SIGNING_KEY is not set: signing admission tokens with the key generated in %s "
                   "(fine for one machine; a deployment configures its own).", path)
    return path.read_text()


def keyring() -> Keyring:
    """The keys in force: loaded once per process, re-read from the key directory after a rotation."""
    global _keyring, _keyring_version, _keyring_stale_at
    directory = key_directory()
    if _keyring is not None and (directory is None or not _directory_changed(directory)):
        return _keyring
    with _lock:
        if directory is not None:
            version = directory.version()  # taken before reading: a rotation meanwhile is seen next time
            if _keyring is None or version != _keyring_version or time.time() >= _keyring_stale_at:
                _keyring, _keyring_stale_at = directory.keyring(settings.QMS_EXTRA_VERIFICATION_KEYS)
                _keyring_version = version
        elif _keyring is None:
            pem = settings.QMS_SIGNING_KEY or generated_signing_key(Path(settings.QMS_GENERATED_SIGNING_KEY_FILE))
            _keyring = Keyring.from_pems(pem, settings.QMS_EXTRA_VERIFICATION_KEYS)
    return _keyring


def reset_keyring() -> None:
    """Reload keys from settings on next use (after a rotation, or in tests)."""
    global _keyring, _keyring_version, _keyring_stale_at, _next_directory_check
    _keyring, _keyring_version, _keyring_stale_at, _next_directory_check = None, None, float("inf"), 0.0


def claims_for(*, event_id: int, user_id: int, issued_at: datetime, ttl_seconds: int) -> dict:
    """An admission token's claims: exactly `verify.REQUIRED_CLAIMS`, the list every verification requires."""
    issued = int(issued_at.timestamp())
    claims = {"iss": settings.QMS_TOKEN_ISSUER, "aud": settings.QMS_TOKEN_AUDIENCE, "sub": str(user_id),
              "evt": event_id, "iat": issued, "nbf": issued, "exp": issued + ttl_seconds, "jti": uuid.uuid4().hex}
    return {name: claims[name] for name in REQUIRED_CLAIMS}  # a required claim not built here: KeyError at once


def sign(claims: dict) -> str:
    ring = keyring()
    return jwt.encode(claims, ring.signing_key, algorithm=ALGORITHM, headers={"kid": ring.signing_kid})


def jwks() -> dict:
    return keyring().jwks


def decode(token: str, *, event_id: int | None = None, verify_exp: bool = True) -> dict:
    """The verified claims of an admission token, or TokenRefused with a stable code."""

    def key_for_kid(kid: str):
        key = keyring().verification_keys.get(kid)
        if key is None:
            raise TokenRefused("The token was signed with a key this service does not know.",
                               code="token_unknown_key")
        return key

    try:
        return decode_admission_token(token, key_for_kid, audience=settings.QMS_TOKEN_AUDIENCE,
                                      issuer=settings.QMS_TOKEN_ISSUER, verify_exp=verify_exp, event_id=event_id)
    except AdmissionTokenError as refused:  # the helper's own exception (it imports nothing of QMS)
        raise TokenRefused(refused.detail, code=refused.code) from None
