"""The error promise: every `/api/` answer that is an error is JSON `{code, detail}`, its `code` is in the one
table of codes (`queues.errors.error_codes()`), and README.md and docs/API.md list exactly that table."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import get_resolver
from rest_framework import exceptions as drf_exceptions
from rest_framework.test import APIClient
from rest_framework_simplejwt import exceptions as jwt_exceptions
from rest_framework_simplejwt.serializers import TokenObtainSerializer, TokenRefreshSerializer

from queues import admission, errors
from queues.refusals import ProofOfWorkRequired, Refusal, TokenAlreadyRedeemed, refusal_classes

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    assert code in errors.error_codes(), f"{code} is answered but not documented"
    assert errors.error_codes()[code].status == status
    return body


def test_a_missing_event_answers_event_not_found():
    assert_error(APIClient().get("/api/events/99999/"), 404, "event_not_found")


def test_a_missing_event_answers_event_not_found_on_its_queue_too(make_user):
    client = APIClient()
    client.force_authenticate(make_user())
    assert_error(client.get("/api/events/99999/queue/"), 404, "event_not_found")


def test_an_api_path_no_route_matches_answers_json_not_found():
    assert_error(APIClient().get("/api/events/abc/queue/"), 404, "not_found")


def test_a_page_no_route_matches_stays_html():
    response = APIClient().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_crash_under_api_answers_json_server_error():
    """The URLconf's handler500 (a view that raises cannot be planted in the real URLconf)."""
    handler = get_resolver().resolve_error_handler(500)
    assert handler is errors.server_error
    response = handler(RequestFactory().get("/api/events/"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.content == b'{"code": "server_error", "detail": "Something broke on our side; retry later."}'
    assert handler(RequestFactory().get("/events/1/waiting-room/"))["Content-Type"].startswith("text/html")


def test_a_method_the_endpoint_does_not_answer_is_method_not_allowed(make_user, make_event):
    client = APIClient()
    client.force_authenticate(make_user())
    assert_error(client.put(f"/api/events/{make_event().id}/queue/"), 405, "method_not_allowed")


def test_a_body_that_is_not_json_or_form_is_unsupported_media_type():
    response = APIClient().post("/api/auth/token/", data="username=a", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_wrong_credentials_are_no_active_account(make_user):
    user = make_user()
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": "nope"}, format="json")
    assert_error(response, 401, "no_active_account")


def test_a_garbled_access_token_is_token_not_valid(make_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(client.get("/api/events/"), 401, "token_not_valid")


def test_malformed_json_is_parse_error():
    response = APIClient().post("/api/admissions/verify/", data="{", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_an_invalid_body_is_invalid_with_errors_per_field():
    body = assert_error(APIClient().post("/api/admissions/verify/", {}, format="json"), 400, "invalid")
    assert "token" in body["errors"]


def test_a_refusal_is_answered_with_its_own_status_and_body(make_user, make_event, store):
    """QueueDraining is 409 `queue_draining`: the draining path no longer borrows another refusal's code."""
    event = make_event(draining=True)
    client = APIClient()
    client.force_authenticate(make_user())
    assert_error(client.post(f"/api/events/{event.id}/queue/"), 409, "queue_draining")


def test_a_proof_of_work_refusal_carries_its_challenge(make_user, make_event, store):
    event = make_event(pow_difficulty=8)
    with pytest.raises(ProofOfWorkRequired) as refused:
        admission.enter(event, make_user())
    assert (refused.value.http_status, refused.value.close_code) == (428, 4428)
    body = refused.value.body()
    assert body["code"] == "pow_required" and body["challenge"]["difficulty"] == 8


def test_every_refusal_code_is_in_the_table_with_its_status():
    table = errors.error_codes()
    for cls in refusal_classes():
        for code in cls.codes:
            assert table[code].status == cls.http_status, cls
    assert table[TokenAlreadyRedeemed.code].status == 409


def test_a_refusal_cannot_carry_a_code_it_does_not_list():
    with pytest.raises(AssertionError):
        TokenAlreadyRedeemed(code="token_expired")  # a 400 code raised as a 409: must be TokenRefused
    with pytest.raises(AssertionError):
        Refusal("no code of its own")


def test_every_drf_error_code_is_in_the_table_with_its_status():
    table = errors.error_codes()
    for name in dir(drf_exceptions):
        cls = getattr(drf_exceptions, name)
        if isinstance(cls, type) and issubclass(cls, drf_exceptions.APIException) and cls not in (
                drf_exceptions.APIException, drf_exceptions.ValidationError):
            assert table[cls.default_code].status == cls.status_code, cls
    assert table["invalid"].status == drf_exceptions.ValidationError.status_code


def test_every_simplejwt_error_code_is_in_the_table():
    table = errors.error_codes()
    codes = {jwt_exceptions.InvalidToken.default_code, *TokenObtainSerializer.default_error_messages,
             *TokenRefreshSerializer.default_error_messages, "bad_authorization_header", "user_not_found",
             "user_inactive"}
    for code in codes:
        assert table[code].status == 401, code


def test_the_command_prints_the_table():
    out = io.StringIO()
    call_command("qms_error_codes", stdout=out)
    assert out.getvalue() == errors.error_codes_markdown()
    listed = io.StringIO()
    call_command("qms_error_codes", "--list", stdout=listed)
    assert re.findall(r"`(\w+)`", listed.getvalue()) == list(errors.error_codes())


def test_docs_api_lists_exactly_the_table():
    assert errors.error_codes_markdown() in (ROOT / "docs" / "API.md").read_text()


def test_the_readme_lists_exactly_the_codes():
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Every error body"):].split("\n\n")[0]
    codes = re.findall(r"`(\w+)`", paragraph.split("Codes", 1)[1])
    assert codes == list(errors.error_codes())
