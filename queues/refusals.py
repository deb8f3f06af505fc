"""Refusals: the one family of "no" a fan or client can act on, each with a stable `code`, a `detail`,
the HTTP status the API answers with and the close code the socket ends with.

Services raise them; `queues.errors.exception_handler` maps them to HTTP once, and the socket consumer
maps them to an `error` frame and a close once. A new refusal is a new subclass; `codes` lists every code a
class may carry with what it means, and the documented error table (`queues.errors.ERROR_CODES`) is built
from it.

Standard library only (and `protocol`), so the engine, the adapters and the reservation-side verifier can
all import it.
"""

from __future__ import annotations

from typing import ClassVar

from .protocol import CloseCode
from .verify import TOKEN_CODES


class Refusal(Exception):
    code: str = "refused"
    detail: str = "The request was refused."
    http_status: int = 400
    close_code: int = 4400
    # Every code this class may carry → what it means. Defaults to {code: detail} for a class that sets its own
    # `code`; a family base (QueueClosed) sets it empty and leaves the codes to its subclasses.
    codes: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "codes" not in vars(cls):
            cls.codes = {cls.code: cls.detail}

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra):
        self.detail = detail if detail is not None else type(self).detail
        self.code = code or type(self).code
        # A code outside `codes` would be missing from the documented list: a programming error.
        assert self.code in type(self).codes, f"{type(self).__name__} does not list the code {self.code!r}"
        self.extra = extra  # more fields of the body (a proof-of-work challenge)
        super().__init__(self.detail)

    def body(self) -> dict:
        """`{code, detail, ...}`: the API's error body and the socket's `error` frame (plus `type`)."""
        return {"code": self.code, "detail": self.detail, **self.extra}

    def headers(self) -> dict[str, str]:
        """HTTP headers the API answer carries (a lock's `Retry-After`); none by default."""
        return {}


class EventNotFound(Refusal):
    code, detail, http_status, close_code = "event_not_found", "No such event.", 404, CloseCode.UNKNOWN_EVENT


class NotInQueue(Refusal):
    code, detail, http_status = "not_in_queue", "You hold no place in this queue.", 404


class DrawNotRevealed(Refusal):
    """The pre-queue's draw entries (queues/draw.py) exist only from the opening on."""

    code, detail, http_status = "draw_not_revealed", "The draw is revealed when the sale opens.", 409
    codes: ClassVar[dict[str, str]] = {
        "draw_not_revealed": detail,
        "draw_not_recorded": "The sale has opened; the draw is being recorded: retry in a few seconds.",
    }


class QueueClosed(Refusal):
    """The event accepts no new joins; fans already queued keep their place."""

    code, detail, http_status, close_code = "queue_draining", "This queue takes no new fans.", 409, \
        CloseCode.QUEUE_CLOSED
    codes: ClassVar[dict[str, str]] = {}  # the subclasses' codes


class QueueDraining(QueueClosed):
    code, detail = "queue_draining", "This queue takes no new fans."


class QueueNotOpen(QueueClosed):
    code, detail = "queue_not_open", "The queue is not open yet."


class InvalidReturnUrl(Refusal):
    """`?return=` names a place the waiting room will not send a fan: not an absolute http(s) URL on one of the
    event's own protected routes (another site, another event's sale, userinfo, backslashes: no open redirect)."""

    code, detail = "invalid_return_url", "The return URL is not on one of this event's protected routes."


class ProofOfWorkRequired(Refusal):
    """A fan without a place must first solve the event's proof-of-work challenge (queues/challenge.py).

    Raised by `admission.enter` with a fresh `challenge` in the body: {challenge, difficulty, algorithm,
    expires_at}.
    """

    code, detail, http_status, close_code = ("pow_required", "Solve the proof-of-work challenge to join this queue.",
                                             428, CloseCode.POW_REQUIRED)  # 428 Precondition Required
    codes: ClassVar[dict[str, str]] = {
        "pow_required": "Solve the proof-of-work challenge (in the body as `challenge`) to join this queue.",
        "pow_invalid": "The solution or challenge is wrong, or was used already; solve the new `challenge`.",
        "pow_expired": "The challenge expired; solve the new `challenge`.",
    }


class EntryRefused(Refusal):
    """The event's entry policy (queues/entry.py) turns this fan away; nothing else was spent (no place, no code,
    no enqueue token). A fan who already holds a place or an admission is never asked."""

    code, detail, http_status, close_code = ("entry_closed", "This sale is closed.", 403, CloseCode.ENTRY_REFUSED)
    codes: ClassVar[dict[str, str]] = {}  # the subclasses' codes


class EntryClosed(EntryRefused):
    """Entry policy `reject`: the body's `message` is the operator's text (may be empty)."""

    code, detail = "entry_closed", "This sale is closed: nobody joins (the operator's text is in `message`)."


class EnqueueTokenRefused(EntryRefused):
    code, detail = "enqueue_token_required", "This queue is invite-only: join with your invitation's `enqueue_token`."
    codes: ClassVar[dict[str, str]] = {
        "enqueue_token_required": detail,
        "enqueue_token_invalid": "The enqueue token is malformed, badly signed, or lacks `evt`, `exp` or `jti`.",
        "enqueue_token_expired": "The enqueue token has expired: get a new invitation from the ticketing site.",
        "enqueue_token_wrong_event": "The enqueue token invites to another event.",
        "enqueue_token_wrong_user": "The enqueue token was issued to another user (its `sub`).",
    }


class EnqueueTokenUsed(EntryRefused):
    code, detail, http_status = "enqueue_token_used", "This enqueue token was already used to join.", 409


class AccessCodeRefused(EntryRefused):
    code, detail = "access_code_required", "This queue asks for an access code: join with `access_code`."
    codes: ClassVar[dict[str, str]] = {
        "access_code_required": detail,
        "access_code_invalid": "No such access code for this event.",
        "access_code_revoked": "This access code was revoked by the organiser.",
    }


class AccessCodeUsed(EntryRefused):
    code, detail, http_status = "access_code_used", "This access code is held by another fan.", 409


class AccessCodeNotFound(Refusal):
    """Staff API (queues/access_codes_api.py): no such code to revoke."""

    code, detail, http_status = "access_code_not_found", "The event has no such access code.", 404


class TokenRefused(Refusal):
    """An admission token that fails verification; the code says why (the same codes as queues/verify.py)."""

    code, detail = "token_invalid", TOKEN_CODES["token_invalid"]
    codes: ClassVar[dict[str, str]] = {**TOKEN_CODES, "token_unknown": "No admission was issued with this token."}


class TokenReleased(TokenRefused):
    code, detail, http_status = "token_released", "The admission was released.", 409


class TokenAlreadyRedeemed(TokenRefused):
    code, detail, http_status = "token_already_redeemed", "The token was already redeemed.", 409


class IdentityTokenRefused(Refusal):
    """An OpenID Connect provider's access token that QMS does not accept (queues/oidc.py); the code says why."""

    code, detail, http_status, close_code = ("oidc_token_invalid", "The identity token's signature or claims are "
                                             "invalid.", 401, CloseCode.NOT_AUTHENTICATED)
    codes: ClassVar[dict[str, str]] = {
        "oidc_token_invalid": "The identity provider's token is malformed, unsigned (`alg: none`), not RS256/ES256, "
                              "badly signed, or lacks `sub`/`exp`/`aud`.",
        "oidc_wrong_issuer": "The token was issued by an identity provider QMS does not trust.",
        "oidc_wrong_audience": "The identity provider's token is for another audience.",
        "oidc_token_expired": "The identity provider's token has expired: get a new one from it.",
        "oidc_unknown_key": "The token was signed with a key the identity provider's JWKS does not list.",
    }


class IdentityProviderUnavailable(Refusal):
    code, detail, http_status, close_code = ("oidc_jwks_unavailable", "The identity provider's keys cannot be "
                                             "fetched; retry later.", 503, CloseCode.NOT_AUTHENTICATED)


def refusal_classes() -> list[type[Refusal]]:
    """Every refusal class defined so far, base first (for the documented error table)."""
    found, pending = [], [Refusal]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
