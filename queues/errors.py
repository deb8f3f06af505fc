"""Every API error as `{code, detail}`: the DRF handler that shapes it, the JSON 404/500 under /api/, and the
table of every code a client may see (`error_codes()`), which README.md and docs/API.md print
(`manage.py qms_error_codes`; tests/test_errors.py holds the docs to it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import get_resolver
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .refusals import Refusal, refusal_classes

API_PREFIX = "/api/"


@dataclass(frozen=True)
class ErrorCode:
    status: int  # the HTTP status it comes with
    meaning: str
    source: str  # "qms", "drf" or "simplejwt": who raises it


# Codes raised by DRF and SimpleJWT (their own classes), shaped by `exception_handler` below; QMS's own codes
# come from the Refusal classes (queues/refusals.py).
_FRAMEWORK_CODES: dict[str, ErrorCode] = {
    "invalid": ErrorCode(400, "The request body is invalid; `errors` and `codes` say why, field by field.", "drf"),
    "parse_error": ErrorCode(400, "The request body is not well-formed JSON or form data.", "drf"),
    "not_authenticated": ErrorCode(401, "No credentials were sent: log in (`POST /api/auth/token/`).", "drf"),
    "authentication_failed": ErrorCode(401, "The credentials sent were wrong.", "drf"),
    "bad_authorization_header": ErrorCode(401, "The `Authorization` header is not `Bearer <token>`.",
                                          "simplejwt"),
    "token_not_valid": ErrorCode(401, "The access or refresh token is invalid or expired: refresh it, or log "
                                      "in again.", "simplejwt"),
    "no_active_account": ErrorCode(401, "No active account with these credentials (login or refresh).",
                                   "simplejwt"),
    "user_not_found": ErrorCode(401, "The token's user no longer exists.", "simplejwt"),
    "user_inactive": ErrorCode(401, "The token's user is deactivated.", "simplejwt"),
    "permission_denied": ErrorCode(403, "You may not do this (staff only, or CSRF missing for a session).",
                                   "drf"),
    "not_found": ErrorCode(404, "No such API endpoint.", "drf"),
    "method_not_allowed": ErrorCode(405, "This endpoint does not answer this HTTP method.", "drf"),
    "not_acceptable": ErrorCode(406, "The `Accept` header asks for a format the API does not speak (JSON).",
                                "drf"),
    "unsupported_media_type": ErrorCode(415, "The body's `Content-Type` is not JSON, form or multipart.", "drf"),
    "throttled": ErrorCode(429, "Too many requests: wait `Retry-After` seconds.", "drf"),
    "server_error": ErrorCode(500, "Something broke on our side; retry later.", "qms"),
}


def error_codes() -> dict[str, ErrorCode]:
    """Every `code` an `/api/` answer may carry, by status then code: the documented list.

    QMS's own are the Refusal subclasses the URLconf's views can reach: loading it imports every module
    that defines one (queues.operations' `queue_busy`, say), wherever it lives.
    """
    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    codes = dict(_FRAMEWORK_CODES)
    for cls in refusal_classes():
        for code, meaning in cls.codes.items():
            if code in codes:
                raise RuntimeError(f"error code {code!r} is defined twice")
            codes[code] = ErrorCode(cls.http_status, meaning, "qms")
    return dict(sorted(codes.items(), key=lambda item: (item[1].status, item[0])))


def error_codes_markdown() -> str:
    """The table docs/API.md shows (and `manage.py qms_error_codes` prints)."""
    lines = ["| code | HTTP | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{code}` | {entry.status} | {entry.meaning} |" for code, entry in error_codes().items()]
    return "\n".join(lines) + "\n"


def _first_code(codes) -> str:
    while isinstance(codes, (list, tuple)) and codes:
        codes = codes[0]
    if isinstance(codes, dict):
        return "invalid"
    return str(codes) if codes else "error"


def exception_handler(exc, context):
    """DRF's handler, with every error body shaped as {code, detail}; a Refusal carries its own status."""
    if isinstance(exc, Refusal):
        return Response(exc.body(), status=exc.http_status, headers=exc.headers())
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        # `codes` mirrors `errors` with each message's stable code (`route_taken`, `invalid_cidr`...): clients
        # branch on those, the English messages are for people.
        response.data = {"code": "invalid", "detail": "The request body is invalid.", "errors": response.data,
                         "codes": exc.get_codes()}
        return response
    data = response.data
    if isinstance(data, dict) and "code" in data and "detail" in data:  # SimpleJWT's token_not_valid
        response.data = {"code": str(data["code"]), "detail": str(data["detail"])}
    elif isinstance(exc, exceptions.APIException):
        response.data = {"code": _first_code(exc.get_codes()), "detail": str(exc.detail)}
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: JSON `{code: not_found}` under /api/ (a path no route matches), Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"code": "not_found", "detail": _FRAMEWORK_CODES["not_found"].meaning}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """`handler500`: JSON `{code: server_error}` under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"code": "server_error", "detail": _FRAMEWORK_CODES["server_error"].meaning},
                            status=500)
    return defaults.server_error(request)
