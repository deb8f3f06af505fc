"""API errors with stable codes, and the DRF handler that shapes every error body as {code, detail}."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler


class EventNotFound(exceptions.NotFound):
    default_detail = "No such event."
    default_code = "event_not_found"


class NotInQueue(exceptions.NotFound):
    default_detail = "You hold no place in this queue."
    default_code = "not_in_queue"


class QueueDraining(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This queue takes no new fans."
    default_code = "queue_draining"


class TokenRefused(exceptions.APIException):
    """An admission token that fails verification; the code says why."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "token_invalid"

    def __init__(self, code: str, detail: str, status_code: int | None = None):
        super().__init__(detail=detail, code=code)
        if status_code is not None:
            self.status_code = status_code


class ProofOfWorkRequired(exceptions.APIException):
    """428: a fan without a place must first solve the event's proof-of-work challenge (queues/challenge.py)."""

    status_code = 428  # Precondition Required
    default_code = "pow_required"

    def __init__(self, code: str, detail: str, challenge: dict):
        super().__init__(detail=detail, code=code)
        self.challenge = challenge


def _first_code(codes) -> str:
    while isinstance(codes, (list, tuple)) and codes:
        codes = codes[0]
    if isinstance(codes, dict):
        return "invalid"
    return str(codes) if codes else "error"


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "The request body is invalid.", "errors": response.data}
        return response
    data = response.data
    if isinstance(data, dict) and "code" in data and "detail" in data:
        response.data = {"code": str(data["code"]), "detail": str(data["detail"])}
    elif isinstance(exc, exceptions.APIException):
        response.data = {"code": _first_code(exc.get_codes()), "detail": str(exc.detail)}
    if isinstance(exc, ProofOfWorkRequired):
        response.data["challenge"] = exc.challenge
    return response
