"""Refusals: the one family of "no" a fan or client can act on, each with a stable `code`, a `detail`,
the HTTP status the API answers with and the close code the socket ends with.

Services raise them; `queues.errors.exception_handler` maps them to HTTP once, and the socket consumer
maps them to an `error` frame and a close once. A new refusal is a new subclass.
"""

from __future__ import annotations

from .protocol import CloseCode


class Refusal(Exception):
    code: str = "refused"
    detail: str = "The request was refused."
    http_status: int = 400
    close_code: int = 4400

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra):
        self.detail = detail if detail is not None else type(self).detail
        self.code = code or type(self).code
        self.extra = extra  # more fields of the body (a proof-of-work challenge)
        super().__init__(self.detail)

    def body(self) -> dict:
        """`{code, detail, ...}`: the API's error body and the socket's `error` frame (plus `type`)."""
        return {"code": self.code, "detail": self.detail, **self.extra}


class EventNotFound(Refusal):
    code, detail, http_status, close_code = "event_not_found", "No such event.", 404, CloseCode.UNKNOWN_EVENT


class QueueDraining(Refusal):
    code, detail, http_status, close_code = ("queue_draining", "This queue takes no new fans.", 409,
                                             CloseCode.QUEUE_CLOSED)


class QueueNotOpen(Refusal):
    code, detail, http_status, close_code = ("queue_not_open", "The queue is not open yet.", 409,
                                             CloseCode.QUEUE_CLOSED)
