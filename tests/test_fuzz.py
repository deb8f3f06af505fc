"""Fuzzing: schemathesis against the OpenAPI schema, hypothesis-generated WebSocket frames.

Zero 5xx and zero crashed consumers, whatever a client sends: on the embedded
backends and on production's (Redis store, channel layer and cache; PostgreSQL
whenever the run's DATABASE_URL is, as under `make test`).
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from asgiref.sync import async_to_sync
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import AccessToken

from tests.sockets import socket

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

FUZZ_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def backends(realtime, request):
    """Store, channel layer and cache: in-memory all three (embedded), or Redis all three (production)."""
    if realtime == "redis":
        request.getfixturevalue("redis_cache")
    return realtime


@pytest.fixture
def staff_headers(backends, make_user, make_event):
    make_event(paused=True)  # something for /api/events/{id}/... to find
    user = make_user(is_staff=True)
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes connections after each request
@schema.parametrize()
@FUZZ_SETTINGS
def test_api_never_answers_a_server_error(case, staff_headers):
    response = case.call(headers=staff_headers)
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        assert "code" in response.json(), response.text  # every error carries a stable code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
message_types = st.sampled_from(["ping", "PING", "join", "admit", "", "leave ", "__proto__"]) | st.text(max_size=20)
frames = st.one_of(
    json_values.map(json.dumps),
    st.builds(lambda kind, extra: json.dumps({"type": kind, **extra}), message_types,
              st.dictionaries(st.text(max_size=10), json_values, max_size=3)),
    st.text(min_size=1, max_size=200),  # an empty frame cannot be sent at all
    st.binary(min_size=1, max_size=200),
    st.integers(min_value=4000, max_value=20000).map(lambda n: json.dumps({"type": "ping", "pad": "x" * n})),
)


@pytest.mark.django_db(transaction=True)
@given(batch=st.lists(frames, min_size=1, max_size=8))
@FUZZ_SETTINGS
def test_no_frame_crashes_the_consumer(batch, backends, make_user, make_event):
    event = make_event(paused=True)
    token = str(AccessToken.for_user(make_user()))

    async def exchange():
        comm = socket(event.id, query=f"token={token}")
        assert (await comm.connect(timeout=5))[0]
        assert (await comm.receive_json_from(timeout=5))["type"] == "queued"
        for frame in batch:
            if frame == json.dumps({"type": "leave"}):
                continue
            if isinstance(frame, bytes):
                await comm.send_to(bytes_data=frame)
            else:
                await comm.send_to(text_data=frame)
            reply = await comm.receive_json_from(timeout=5)
            assert reply["type"] in {"error", "pong"}, reply
            if reply["type"] == "error":
                assert reply["code"] in {"malformed_json", "invalid_message", "unknown_type", "frame_too_large",
                                         "binary_not_supported"}
        await comm.send_json_to({"type": "ping"})  # still alive and usable
        assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
        await comm.disconnect()

    async_to_sync(exchange)()
