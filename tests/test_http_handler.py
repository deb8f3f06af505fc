"""The HTTP side of the ASGI application (qms_project/http.py): Django's request, one thread hop, same answers.

Requests go through `qms_project.asgi.application` as Daphne sends them (ASGI messages), not through the test
client, so the handler that serves production is the one under test.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.testing import HttpCommunicator
from django.core import signals

from qms_project.asgi import application
from qms_project.http import OneHopASGIHandler

HOST = [(b"host", b"testserver")]
STATIC_FILE = Path(__file__).resolve().parents[1] / "static" / "qms" / "waiting-room.js"


def fetch(path: str, method: str = "GET", body: bytes = b"", headers: list | None = None) -> dict:
    """One request as Daphne hands it over; the answer's status, headers and whole body."""
    scope = {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "scheme": "http", "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80),
             "headers": [*HOST, (b"content-length", str(len(body)).encode()), *(headers or [])]}

    async def run() -> dict:
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(10)
        response = {"status": start["status"], "headers": start["headers"], "body": b""}
        while True:  # the last message of a streamed answer may carry no body (ASGI's default: b"")
            message = await communicator.receive_output(10)
            response["body"] += message.get("body", b"")
            if not message.get("more_body"):
                return response

    return async_to_sync(run)()


def header(response: dict, name: bytes) -> bytes | None:
    return next((value for key, value in response["headers"] if key.lower() == name), None)


def test_http_is_served_by_the_one_hop_handler():
    assert isinstance(application.application_mapping["http"], OneHopASGIHandler)


def test_signals_and_the_view_run_in_one_thread_off_the_event_loop():
    """request_started and request_finished (which hand the database connection back) run where the view ran."""
    seen: list[tuple[str, int]] = []

    def started(**kwargs):
        seen.append(("started", threading.get_ident()))

    def finished(**kwargs):
        seen.append(("finished", threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    loop_thread = []

    async def run() -> dict:
        loop_thread.append(threading.get_ident())
        return await HttpCommunicator(application, "GET", "/healthz", headers=HOST).get_response(timeout=10)

    try:
        response = async_to_sync(run)()
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert response["status"] == 200
    assert [name for name, _ in seen] == ["started", "finished"]
    assert seen[0][1] == seen[1][1] != loop_thread[0]


def test_an_api_answer_through_asgi_is_english_json():
    response = fetch("/api/no-such-thing/", headers=[(b"accept-language", b"de-DE,de;q=0.9")])
    assert response["status"] == 404
    assert header(response, b"content-type") == b"application/json"
    assert header(response, b"content-language") is None
    assert b'"code"' in response["body"] and response["body"].isascii()


def test_a_static_file_streams_whole():
    response = fetch("/static/qms/waiting-room.js")
    assert response["status"] == 200
    assert response["body"] == STATIC_FILE.read_bytes()


@pytest.mark.django_db
def test_a_post_body_reaches_the_view():
    response = fetch("/api/admissions/verify/", "POST", b'{"token": 7, "redeem": "vielleicht"}',
                     [(b"content-type", b"application/json")])
    assert response["status"] == 400
    assert b"redeem" in response["body"]
