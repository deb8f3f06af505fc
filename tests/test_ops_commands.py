"""The operators' management commands: qms_status, qms_queue (every operation) with qms_admit, qms_pause and
qms_resume bound to one each, qms_rotate_key."""

from __future__ import annotations

import json
import logging
import time
from io import StringIO

import jwt
import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from queues import admission, tokens
from queues.models import Admission
from queues.operations import OPERATIONS
from queues.refusals import TokenRefused
from tests.fans import queue_fans

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_prints_the_live_numbers_of_an_event_named_by_id_or_slug(redis_store, make_event, make_user):
    event = make_event(paused=True, slug="finals")
    queue_fans(event, make_user, 3)
    by_id = json.loads(run("qms_status", str(event.id), "--json"))
    assert (by_id["waiting"], by_id["joined_total"], by_id["live_admissions"], by_id["paused"]) == (3, 3, 0, True)
    assert "waiting" in run("qms_status", "finals") and "finals" in run("qms_status", "finals")


def test_status_and_admit_refuse_the_in_memory_store_of_the_embedded_server(settings, make_event):
    from queues.store import reset_store_cache

    settings.QMS_STORE = {"BACKEND": "queues.store.memory.MemoryQueueStore"}
    reset_store_cache()
    event = make_event()
    for command in (("qms_status", str(event.id)), ("qms_admit", str(event.id), "1")):
        with pytest.raises(CommandError, match="in memory"):
            run(*command)


def test_unknown_event_is_an_error(redis_store):
    with pytest.raises(CommandError, match="No event"):
        run("qms_pause", "no-such-event")


def test_admit_lets_n_in_now_beyond_the_rate_in_queue_order(redis_store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=1)
    fans = queue_fans(event, make_user, 5)
    assert "Admitted 2 of 2" in run("qms_admit", str(event.id), "2")
    issued = Admission.objects.filter(event=event).order_by("ticket")
    assert [row.user_id for row in issued] == [fan.id for fan in fans[:2]]
    assert admission.stats(event)["waiting"] == 3


def test_admit_stays_within_max_active(redis_store, make_event, make_user):
    event = make_event(paused=True, max_active=1)
    queue_fans(event, make_user, 3)
    assert "Admitted 1 of 3" in run("qms_admit", str(event.id), "3")


@pytest.mark.parametrize(("count", "limit"), [("0", "greater than or equal to 1"),
                                              ("10001", "less than or equal to 10000")])
def test_admit_refuses_a_count_outside_the_limits(redis_store, make_event, make_user, count, limit):
    event = make_event(paused=True)
    queue_fans(event, make_user, 1)
    for command in (("qms_admit", str(event.id), count), ("qms_queue", "admit", str(event.id), count)):
        with pytest.raises(CommandError, match=f"count: Ensure this value is {limit}"):
            run(*command)
    assert not Admission.objects.filter(event=event).exists()


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_qms_queue_runs_every_operation(redis_store, make_event, make_user, name):
    operation = OPERATIONS[name]
    event = make_event(paused=operation.offered_when != ("paused", False))
    queue_fans(event, make_user, 2)
    if operation.offered_when == ("draining", True):
        Event.objects.filter(pk=event.pk).update(draining=True)
    args = [str(argument.minimum) for argument in operation.arguments if argument.required] + (
        ["--yes"] if operation.confirm else [])
    output = run("qms_queue", name, str(event.id), *args)
    assert f"(id {event.id})" in output
    event.refresh_from_db()
    if operation.offered_when:
        assert getattr(event, operation.offered_when[0]) is not operation.offered_when[1]
    if name == "admit":
        assert Admission.objects.filter(event=event).count() == 1
    if name == "reset":
        assert admission.stats(event)["waiting"] == 0


@pytest.mark.parametrize("name", [name for name, operation in OPERATIONS.items() if operation.confirm])
def test_an_operation_that_asks_first_needs_yes(redis_store, make_event, make_user, name):
    event = make_event(paused=True)
    queue_fans(event, make_user, 2)
    with pytest.raises(CommandError, match="Add --yes"):
        run("qms_queue", name, str(event.id))
    event.refresh_from_db()
    assert not event.draining and admission.stats(event)["waiting"] == 2


def test_pause_and_resume_flip_the_event_and_log_a_structured_operator_action(make_event, caplog):
    event = make_event(paused=False)
    with caplog.at_level(logging.INFO, logger="queues.operations"):
        assert "paused" in run("qms_pause", str(event.id))
        assert Event.objects.get(pk=event.pk).paused
        assert "resumed" in run("qms_resume", str(event.id))
    assert not Event.objects.get(pk=event.pk).paused
    actions = [(r.action, r.event_id) for r in caplog.records if r.getMessage() == "operator action"]
    assert actions == [("pause", event.id), ("resume", event.id)]


# --- key rotation ------------------------------------------------------------------------


@pytest.fixture
def key_dir(settings, tmp_path):
    settings.QMS_SIGNING_KEY = ""
    settings.QMS_SIGNING_KEY_DIR = str(tmp_path / "keys")
    tokens.reset_keyring()
    yield tmp_path / "keys"
    tokens.reset_keyring()


def kids() -> list[str]:
    return [key["kid"] for key in tokens.jwks()["keys"]]


def token_claims(ttl: int = 600) -> dict:
    now = int(time.time())
    return {"iss": "qms", "aud": "reservation", "sub": "1", "evt": 1, "iat": now, "nbf": now, "exp": now + ttl,
            "jti": f"jti-{time.monotonic_ns()}"}


def test_a_fresh_key_directory_gets_a_signing_key_and_a_published_next_key(key_dir):
    signing, upcoming = kids()
    assert tokens.keyring().signing_kid == signing and signing != upcoming
    assert {path.name for path in key_dir.iterdir()} == {"signing-key.pem", "next-signing-key.pem"}
    assert (key_dir / "signing-key.pem").stat().st_mode & 0o077 == 0, "private keys are readable by the owner only"


def test_rotation_signs_with_the_published_next_key_and_old_tokens_still_verify(key_dir, make_event):
    make_event(token_ttl_seconds=900)
    old_signing, upcoming = kids()
    before = tokens.sign(token_claims(ttl=900))
    output = run("qms_rotate_key")
    signing, new_next, retired = kids()
    assert (signing, retired) == (upcoming, old_signing) and new_next not in (old_signing, upcoming)
    assert f"retired {old_signing}" in output and f"signing {upcoming}" in output
    assert tokens.decode(before)["sub"] == "1"  # signed before the rotation
    assert jwt.get_unverified_header(tokens.sign(token_claims()))["kid"] == upcoming
    retirement = json.loads((key_dir / "retired" / f"{old_signing}.json").read_text())
    assert retirement["verify_until"] >= jwt.decode(before, options={"verify_signature": False})["exp"]


def test_a_retired_key_leaves_the_jwks_once_its_tokens_have_expired(key_dir):
    old_signing = kids()[0]
    before = tokens.sign(token_claims())
    run("qms_rotate_key", "--keep-seconds", "0")
    assert old_signing not in kids()
    assert not (key_dir / "retired" / f"{old_signing}.json").exists()
    with pytest.raises(TokenRefused) as refused:
        tokens.decode(before)
    assert refused.value.code == "token_unknown_key"


def test_a_process_sees_a_rotation_made_by_another_without_restarting(key_dir, monkeypatch):
    monkeypatch.setattr(tokens, "KEY_DIRECTORY_CHECK_SECONDS", 0.0)
    first = tokens.keyring().signing_kid
    _, rotated_to = tokens.KeyDirectory(key_dir).rotate(time.time() + 600)  # as `qms_rotate_key` elsewhere
    assert rotated_to != first and tokens.keyring().signing_kid == rotated_to


def test_rotation_needs_a_key_directory(settings):
    settings.QMS_SIGNING_KEY_DIR = ""
    with pytest.raises(CommandError, match="QMS_SIGNING_KEY_DIR is not set"):
        run("qms_rotate_key")


def test_a_key_directory_and_a_signing_key_together_are_refused(key_dir, settings):
    settings.QMS_SIGNING_KEY = tokens.generate_private_pem()
    with pytest.raises(Exception, match="not both"):
        tokens.keyring()
