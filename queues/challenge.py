"""Proof of work on join: a stateless, signed challenge that a fan's browser must solve before taking a place.

A challenge is `v1.<event>.<user>.<nonce>.<expires>` plus an HMAC-SHA256 over it
keyed by SECRET_KEY (django.core.signing), so the server keeps nothing while a
challenge is outstanding. The client finds a `solution` such that
SHA-256(challenge + ":" + solution) starts with at least `event.pow_difficulty`
zero bits. A verified challenge is remembered in the Django cache until it
expires, so one solution takes one place at most (no replay).

Only fans who hold no place are asked (`admission.enter` checks `admission.status`
first): a queued or admitted fan reconnects freely and never loses the place.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from django.core import signing
from django.core.cache import cache

from .refusals import ProofOfWorkRequired

ALGORITHM = "sha256-leading-zero-bits"
TTL_SECONDS = 120
MAX_SOLUTION_LENGTH = 64
_SALT = "qms.queues.challenge"
_VERSION = "v1"


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT, algorithm="sha256")


def required(event) -> bool:
    return (event.pow_difficulty or 0) > 0


def issue_challenge(event, user, now: float | None = None) -> dict:
    """A fresh challenge for this fan at this event: {challenge, difficulty, algorithm, expires_at}."""
    expires = int((time.time() if now is None else now) + TTL_SECONDS)
    payload = f"{_VERSION}.{event.pk}.{user.pk}.{secrets.token_urlsafe(12)}.{expires}"
    return {
        "challenge": _signer().sign(payload),
        "difficulty": int(event.pow_difficulty),
        "algorithm": ALGORITHM,
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
    }


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solves(challenge: str, solution: str, difficulty: int) -> bool:
    digest = hashlib.sha256(f"{challenge}:{solution}".encode()).digest()
    return leading_zero_bits(digest) >= difficulty


def solve(challenge: str, difficulty: int) -> str:
    """The first counter that solves the challenge (tests and non-browser clients)."""
    counter = 0
    while not solves(challenge, str(counter), difficulty):
        counter += 1
    return str(counter)


def verify_solution(event, user, challenge: object, solution: object, now: float | None = None) -> None:
    """Accept a solved challenge once; raise ProofOfWorkRequired with a stable code otherwise."""
    if not challenge or solution is None or solution == "":
        raise ProofOfWorkRequired("Solve the proof-of-work challenge to join this queue.", code="pow_required")
    challenge, solution = str(challenge), str(solution)
    if len(solution) > MAX_SOLUTION_LENGTH:
        raise ProofOfWorkRequired("The solution is too long.", code="pow_invalid")
    try:
        payload = _signer().unsign(challenge)
        version, event_id, user_id, _nonce, expires = payload.split(".")
        expires_at = int(expires)
    except (signing.BadSignature, ValueError):
        raise ProofOfWorkRequired("The challenge is not one this server issued.", code="pow_invalid") from None
    if version != _VERSION or event_id != str(event.pk) or user_id != str(user.pk):
        raise ProofOfWorkRequired("The challenge was issued for another fan or event.", code="pow_invalid")
    remaining = expires_at - (time.time() if now is None else now)
    if remaining <= 0:
        raise ProofOfWorkRequired("The challenge expired; solve the new one.", code="pow_expired")
    if not solves(challenge, solution, int(event.pow_difficulty)):
        raise ProofOfWorkRequired("The solution does not meet the difficulty.", code="pow_invalid")
    key = "qms:pow:" + hashlib.sha256(challenge.encode()).hexdigest()
    if not cache.add(key, 1, timeout=int(remaining) + 1):
        raise ProofOfWorkRequired("This challenge was already used; solve the new one.", code="pow_invalid")


__all__ = ["ALGORITHM", "TTL_SECONDS", "ProofOfWorkRequired", "issue_challenge",
           "leading_zero_bits", "required", "solve", "solves", "verify_solution"]
