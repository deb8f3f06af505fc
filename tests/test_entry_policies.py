"""Entry policies (queues/entry.py): invite-only with enqueue tokens, access codes and reject, over HTTP and
the socket; what a refusal costs (nothing); races for one token or code (exactly one fan wins); the staff API
and the admin of the codes; the event fields."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from channels.db import database_sync_to_async
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import AccessCode, EnqueueTokenUse
from queues import admission, challenge, entry
from queues.protocol import CloseCode
from queues.refusals import EntryRefused
from tests.admin_forms import admin_form_data
from tests.pow import join, queue_url
from tests.sockets import closed_with, open_socket, session_headers
from tests.threads import DEADLINE_SECONDS, run_in_threads

SECRET = "presale-secret-" + "k" * 32


def invitation(event, key=SECRET, algorithm="HS256", **claims) -> str:
    """An enqueue token as the ticketing site issues it (docs/API.md "Entry policies")."""
    body = {"evt": event.id, "exp": int(time.time()) + 300, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode({name: value for name, value in body.items() if value is not None}, key, algorithm=algorithm)


def client_of(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def enter(client, event, **body):
    return client.post(queue_url(event), body, format="json")


@pytest.fixture
def invite_only(make_event):
    return make_event(entry_policy="invite_only", enqueue_key=SECRET, paused=True)


@pytest.fixture
def with_codes(make_event):
    event = make_event(entry_policy="codes", paused=True)
    entry.add_codes(event, ["ALPHA-1", "BRAVO-2", "CHARLIE-3"])
    return event


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code, response.json()


@pytest.mark.django_db
class TestInviteOnlyHTTP:
    def test_without_a_token_the_join_is_refused_and_takes_no_place(self, invite_only, make_user, store):
        fan = make_user()
        assert_refused(enter(client_of(fan), invite_only), 403, "enqueue_token_required")
        assert admission.status(invite_only, fan) is None

    def test_a_valid_token_takes_a_place_and_is_spent_by_this_fan(self, invite_only, make_user, store):
        fan, token = make_user(), invitation(invite_only)
        response = enter(client_of(fan), invite_only, enqueue_token=token)
        assert response.status_code == 201, response.json()
        assert response.json()["state"] == "waiting"
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        assert EnqueueTokenUse.objects.get(event=invite_only, jti=jti).user == fan

    def test_a_used_token_is_refused_to_another_fan(self, invite_only, make_user, store):
        token = invitation(invite_only)
        assert enter(client_of(make_user()), invite_only, enqueue_token=token).status_code == 201
        other = make_user()
        assert_refused(enter(client_of(other), invite_only, enqueue_token=token), 409, "enqueue_token_used")
        assert admission.status(invite_only, other) is None

    def test_a_token_is_spent_once_even_for_the_fan_who_used_it(self, invite_only, make_user, store):
        fan, token = make_user(), invitation(invite_only)
        client = client_of(fan)
        assert enter(client, invite_only, enqueue_token=token).status_code == 201
        assert client.delete(queue_url(invite_only)).status_code == 204  # no place any more
        assert_refused(enter(client, invite_only, enqueue_token=token), 409, "enqueue_token_used")

    def test_a_queued_fan_rejoins_without_the_token(self, invite_only, make_user, store):
        client = client_of(make_user())
        first = enter(client, invite_only, enqueue_token=invitation(invite_only)).json()
        again = join(client, invite_only)
        assert again.status_code == 200
        assert again.json()["ticket"] == first["ticket"]

    def test_an_admitted_fan_rejoins_without_the_token(self, make_event, make_user, store):
        event = make_event(entry_policy="invite_only", enqueue_key=SECRET)  # open, nobody ahead: admitted on join
        client = client_of(make_user())
        assert enter(client, event, enqueue_token=invitation(event)).json()["state"] == "admitted"
        again = join(client, event)
        assert again.status_code == 200
        assert again.json()["state"] == "admitted"

    @pytest.mark.parametrize(("seconds_past", "code"), [(3, None), (60, "enqueue_token_expired")])
    def test_expiry_has_a_small_leeway(self, invite_only, make_user, store, seconds_past, code):
        token = invitation(invite_only, exp=int(time.time()) - seconds_past)
        response = enter(client_of(make_user()), invite_only, enqueue_token=token)
        if code is None:
            assert response.status_code == 201, response.json()
        else:
            assert_refused(response, 403, code)

    def test_a_token_for_another_event_is_refused(self, invite_only, make_event, make_user, store):
        other = make_event(entry_policy="invite_only", enqueue_key=SECRET)
        token = invitation(other)  # signed with the same key: the `evt` claim is what tells them apart
        assert_refused(enter(client_of(make_user()), invite_only, enqueue_token=token), 403,
                       "enqueue_token_wrong_event")

    @pytest.mark.parametrize("bad", ["wrong key", "no jti", "no exp", "no evt", "alg none", "not a jwt"])
    def test_a_bad_token_is_invalid(self, invite_only, make_user, store, bad):
        token = {
            "wrong key": lambda: invitation(invite_only, key="another-secret-" + "z" * 32),
            "no jti": lambda: invitation(invite_only, jti=None),
            "no exp": lambda: invitation(invite_only, exp=None),
            "no evt": lambda: invitation(invite_only, evt=None),
            "alg none": lambda: invitation(invite_only, key=None, algorithm="none"),
            "not a jwt": lambda: "hello",
        }[bad]()
        fan = make_user()
        assert_refused(enter(client_of(fan), invite_only, enqueue_token=token), 403, "enqueue_token_invalid")
        assert admission.status(invite_only, fan) is None

    def test_sub_binds_the_token_to_a_username(self, invite_only, make_user, store):
        fan = make_user("alice")
        assert_refused(enter(client_of(fan), invite_only, enqueue_token=invitation(invite_only, sub="bob")), 403,
                       "enqueue_token_wrong_user")
        response = enter(client_of(fan), invite_only, enqueue_token=invitation(invite_only, sub="alice"))
        assert response.status_code == 201, response.json()

    def test_a_pem_public_key_accepts_es256_and_refuses_hs256_made_with_the_pem(self, make_event, make_user, store):
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        event = make_event(entry_policy="invite_only", enqueue_key=pem, paused=True)
        # The algorithm-confusion attack: the public key (public!) used as an HMAC secret.
        forged = _hs256_with(pem, event)
        assert_refused(enter(client_of(make_user()), event, enqueue_token=forged), 403, "enqueue_token_invalid")
        response = enter(client_of(make_user()), event, enqueue_token=invitation(event, key=private,
                                                                                 algorithm="ES256"))
        assert response.status_code == 201, response.json()

    def test_a_token_refused_later_in_the_join_is_given_back(self, make_event, make_user, store):
        event = make_event(entry_policy="invite_only", enqueue_key=SECRET,
                           prequeue_opens_at=timezone.now() + timedelta(hours=1),
                           sale_starts_at=timezone.now() + timedelta(hours=2))
        token = invitation(event)
        assert_refused(enter(client_of(make_user()), event, enqueue_token=token), 409, "queue_not_open")
        assert not EnqueueTokenUse.objects.exists()  # the join failed: the token can still be used

    def test_the_token_is_checked_before_the_proof_of_work_and_spent_after_it(self, make_event, make_user, store):
        event = make_event(entry_policy="invite_only", enqueue_key=SECRET, pow_difficulty=8, paused=True)
        fan = make_user()
        client = client_of(fan)
        assert_refused(enter(client, event), 403, "enqueue_token_required")  # no challenge to solve in vain
        token = invitation(event)
        issued = enter(client, event, enqueue_token=token).json()
        assert issued["code"] == "pow_required"
        assert not EnqueueTokenUse.objects.exists()
        solution = challenge.solve(issued["challenge"]["challenge"], 8)
        response = enter(client, event, enqueue_token=token,
                         pow={"challenge": issued["challenge"]["challenge"], "solution": solution})
        assert response.status_code == 201, response.json()
        assert EnqueueTokenUse.objects.filter(user=fan).count() == 1


def _hs256_with(pem: str, event) -> str:
    """A token signed HS256 with the public key's PEM as the secret (PyJWT refuses to make one: by hand)."""
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"evt": event.id, "exp": int(time.time()) + 60, "jti": "forged"}).encode())
    signature = b64(hmac.new(pem.encode(), head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


@pytest.mark.django_db
class TestCodesHTTP:
    def test_without_a_code_the_join_is_refused(self, with_codes, make_user, store):
        fan = make_user()
        assert_refused(enter(client_of(fan), with_codes), 403, "access_code_required")
        assert admission.status(with_codes, fan) is None

    def test_an_unknown_code_is_invalid(self, with_codes, make_user, store):
        assert_refused(enter(client_of(make_user()), with_codes, access_code="NOPE"), 403, "access_code_invalid")

    def test_a_code_takes_a_place_and_is_held_by_the_fan(self, with_codes, make_user, store):
        fan = make_user()
        response = enter(client_of(fan), with_codes, access_code="ALPHA-1")
        assert response.status_code == 201, response.json()
        assert AccessCode.objects.get(event=with_codes, code="ALPHA-1").used_by == fan

    def test_a_code_held_by_one_fan_is_refused_to_another(self, with_codes, make_user, store):
        assert enter(client_of(make_user()), with_codes, access_code="ALPHA-1").status_code == 201
        other = make_user()
        assert_refused(enter(client_of(other), with_codes, access_code="ALPHA-1"), 409, "access_code_used")
        assert admission.status(with_codes, other) is None

    def test_the_fan_who_holds_a_code_may_join_with_it_again(self, with_codes, make_user, store):
        client = client_of(make_user())
        assert enter(client, with_codes, access_code="ALPHA-1").status_code == 201
        assert client.delete(queue_url(with_codes)).status_code == 204
        assert enter(client, with_codes, access_code="ALPHA-1").status_code == 201

    def test_a_queued_fan_rejoins_without_the_code(self, with_codes, make_user, store):
        client = client_of(make_user())
        first = enter(client, with_codes, access_code="ALPHA-1").json()
        again = join(client, with_codes)
        assert again.status_code == 200
        assert again.json()["ticket"] == first["ticket"]

    def test_a_revoked_code_refuses_new_joins_and_leaves_a_held_place_alone(self, with_codes, make_user, store):
        holder = client_of(make_user())
        first = enter(holder, with_codes, access_code="ALPHA-1").json()
        entry.revoke(AccessCode.objects.filter(code__in=["ALPHA-1", "BRAVO-2"]))
        assert_refused(enter(client_of(make_user()), with_codes, access_code="BRAVO-2"), 403, "access_code_revoked")
        assert join(holder, with_codes).json()["ticket"] == first["ticket"]  # the place is kept
        assert holder.delete(queue_url(with_codes)).status_code == 204
        assert_refused(enter(holder, with_codes, access_code="ALPHA-1"), 403, "access_code_revoked")

    def test_a_code_refused_later_in_the_join_stays_available(self, make_event, make_user, store):
        event = make_event(entry_policy="codes", draining=False, prequeue_opens_at=timezone.now() + timedelta(hours=1),
                           sale_starts_at=timezone.now() + timedelta(hours=2))
        entry.add_codes(event, ["ALPHA-1"])
        assert_refused(enter(client_of(make_user()), event, access_code="ALPHA-1"), 409, "queue_not_open")
        code = AccessCode.objects.get(event=event)
        assert code.used_by is None and code.used_at is None


@pytest.mark.django_db
class TestRejectHTTP:
    def test_nobody_joins_and_the_refusal_carries_the_operators_text(self, make_event, make_user, store):
        event = make_event(entry_policy="reject", closed_message="Back at 18:00 after maintenance.")
        fan = make_user()
        response = enter(client_of(fan), event, access_code="x", enqueue_token="y")
        assert_refused(response, 403, "entry_closed")
        assert response.json()["message"] == "Back at 18:00 after maintenance."
        assert admission.status(event, fan) is None

    def test_a_fan_queued_before_keeps_the_place_for_when_the_queue_reopens(self, make_event, make_user, store):
        event = make_event(paused=True)
        client = client_of(make_user())
        ticket = join(client, event).json()["ticket"]
        event.entry_policy = "reject"
        event.save()
        assert_refused(join(client, event), 403, "entry_closed")  # the page says closed to everyone
        event.entry_policy = "open"
        event.save()
        assert join(client, event).json()["ticket"] == ticket

    def test_the_events_page_lists_a_closed_sale_as_closed_not_on_sale(self, make_event, client):
        make_event(name="Closed for maintenance", entry_policy="reject")
        card = client.get("/").content.decode().split("Closed for maintenance", 1)[1].split("</li>", 1)[0]
        assert ">Closed</span>" in card
        assert "On sale" not in card


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
class TestWebSocket:
    async def refused(self, event, fan, query: str = "") -> tuple[dict, int]:
        headers = await database_sync_to_async(session_headers)(fan)
        comm, message = await open_socket(event.id, headers, query=query)
        return message, await closed_with(comm)

    async def test_invite_only_without_a_token_closes_4430_and_takes_no_place(self, make_event, make_user,
                                                                               realtime):
        event = await database_sync_to_async(make_event)(entry_policy="invite_only", enqueue_key=SECRET,
                                                         paused=True)
        fan = await database_sync_to_async(make_user)()
        message, code = await self.refused(event, fan)
        assert (message["type"], message["code"], code) == ("error", "enqueue_token_required",
                                                            CloseCode.ENTRY_REFUSED)
        assert await database_sync_to_async(admission.status)(event, fan) is None

    async def test_invite_only_with_a_token_queues_and_a_second_fan_cannot_reuse_it(self, make_event, make_user,
                                                                                     realtime):
        event = await database_sync_to_async(make_event)(entry_policy="invite_only", enqueue_key=SECRET,
                                                         paused=True)
        fan, other = await database_sync_to_async(make_user)(), await database_sync_to_async(make_user)()
        query = urlencode({"enqueue_token": invitation(event)})
        headers = await database_sync_to_async(session_headers)(fan)
        comm, message = await open_socket(event.id, headers, query=query)
        assert message["type"] == "queued"
        await comm.disconnect()
        comm, again = await open_socket(event.id, headers)  # the place exists: no token needed
        assert again["ticket"] == message["ticket"]
        await comm.disconnect()
        message, code = await self.refused(event, other, query)
        assert (message["code"], code) == ("enqueue_token_used", CloseCode.ENTRY_REFUSED)

    async def test_codes_over_the_socket(self, make_event, make_user, realtime):
        event = await database_sync_to_async(make_event)(entry_policy="codes", paused=True)
        await database_sync_to_async(entry.add_codes)(event, ["ALPHA-1"])
        fan = await database_sync_to_async(make_user)()
        message, code = await self.refused(event, fan)
        assert (message["code"], code) == ("access_code_required", CloseCode.ENTRY_REFUSED)
        message, code = await self.refused(event, fan, urlencode({"access_code": "WRONG"}))
        assert (message["code"], code) == ("access_code_invalid", CloseCode.ENTRY_REFUSED)
        headers = await database_sync_to_async(session_headers)(fan)
        comm, message = await open_socket(event.id, headers, query=urlencode({"access_code": "ALPHA-1"}))
        assert message["type"] == "queued"
        await comm.disconnect()

    async def test_reject_closes_4430_with_the_operators_text(self, make_event, make_user, realtime):
        event = await database_sync_to_async(make_event)(entry_policy="reject", closed_message="Sold out, sorry.")
        fan = await database_sync_to_async(make_user)()
        message, code = await self.refused(event, fan)
        assert (message["code"], message["message"], code) == ("entry_closed", "Sold out, sorry.",
                                                                CloseCode.ENTRY_REFUSED)


# --- races: the database decides, exactly one fan wins --------------------------------


@contextmanager
def writes_held_until_waiting(model, writers: int):
    """Hold an EXCLUSIVE lock on `model`'s table (reads go on, writes wait) until `writers` writes wait on it, so
    every racer has passed its checks before the first write lands: the race is run, not hoped for."""
    locked, failures = threading.Event(), []

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
                locked.set()
                deadline = time.monotonic() + DEADLINE_SECONDS
                while True:
                    cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees one snapshot
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock'")
                    if cursor.fetchone()[0] >= writers:
                        return
                    if time.monotonic() > deadline:
                        failures.append("the racers never all reached their write")
                        return
                    time.sleep(0.02)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(DEADLINE_SECONDS)
    yield
    holder.join(DEADLINE_SECONDS)
    assert not failures, failures


def race(event, fans, credentials: entry.Credentials) -> list[str]:
    """Every fan enters at once with the same credentials; 'won' or the refusal's code, per fan."""
    def attempt(index: int) -> str:
        try:
            admission.enter(event, fans[index], credentials=credentials)
            return "won"
        except EntryRefused as refused:
            return refused.code
    return run_in_threads(attempt, len(fans))


@pytest.mark.django_db(transaction=True)
class TestRaces:
    RACERS = 4

    @pytest.fixture(autouse=True)
    def postgresql_only(self):
        if connection.vendor != "postgresql":
            pytest.skip("the race is decided by PostgreSQL's row and index locks")

    def test_one_code_many_fans_exactly_one_wins(self, make_event, make_user, redis_store):
        event = make_event(entry_policy="codes", paused=True)
        entry.add_codes(event, ["ONLY-ONE"])
        fans = [make_user() for _ in range(self.RACERS)]
        with writes_held_until_waiting(AccessCode, self.RACERS):
            outcomes = race(event, fans, entry.Credentials(access_code="ONLY-ONE"))
        assert sorted(outcomes) == ["access_code_used"] * (self.RACERS - 1) + ["won"]
        winner = fans[outcomes.index("won")]
        assert AccessCode.objects.get(event=event).used_by == winner
        assert [fan for fan in fans if admission.status(event, fan) is not None] == [winner]

    def test_one_enqueue_token_many_fans_exactly_one_wins(self, make_event, make_user, redis_store):
        event = make_event(entry_policy="invite_only", enqueue_key=SECRET, paused=True)
        fans = [make_user() for _ in range(self.RACERS)]
        with writes_held_until_waiting(EnqueueTokenUse, self.RACERS):
            outcomes = race(event, fans, entry.Credentials(enqueue_token=invitation(event)))
        assert sorted(outcomes) == ["enqueue_token_used"] * (self.RACERS - 1) + ["won"]
        winner = fans[outcomes.index("won")]
        assert list(EnqueueTokenUse.objects.values_list("user", flat=True)) == [winner.id]
        assert [fan for fan in fans if admission.status(event, fan) is not None] == [winner]


# --- the staff API of the codes ---------------------------------------------------------


@pytest.fixture
def staff(make_user):
    return client_of(make_user("operator", is_staff=True, is_superuser=True))


def codes_url(event, tail: str = "") -> str:
    return f"/api/events/{event.id}/access-codes/{tail}"


@pytest.mark.django_db
class TestCodesAPI:
    def test_upload_a_json_list_then_count_and_list(self, staff, make_event):
        event = make_event(entry_policy="codes")
        response = staff.post(codes_url(event), {"codes": ["A1", "B2", "A1", " C3 "]}, format="json")
        assert response.status_code == 201, response.json()
        assert response.json() == {"added": 3, "counts": {"total": 3, "used": 0, "revoked": 0, "available": 3}}
        page = staff.get(codes_url(event), {"limit": 2}).json()
        assert page["count"] == 3 and page["counts"]["total"] == 3
        assert [row["code"] for row in page["results"]] == ["A1", "B2"]
        assert page["next"]

    def test_upload_csv_twice_adds_nothing_the_second_time(self, staff, make_event):
        event = make_event(entry_policy="codes")
        csv_body = "code,note\nA1,first\nB2,second\n\n"
        first = staff.generic("POST", codes_url(event), csv_body, content_type="text/csv")
        assert first.status_code == 201 and first.json()["added"] == 2
        again = staff.generic("POST", codes_url(event), csv_body, content_type="text/csv")
        assert again.json()["added"] == 0 and again.json()["counts"]["total"] == 2

    def test_upload_a_csv_file(self, staff, make_event):
        from django.core.files.uploadedfile import SimpleUploadedFile

        event = make_event(entry_policy="codes")
        response = staff.post(codes_url(event), {"file": SimpleUploadedFile("codes.csv", b"X1\nX2\n")},
                              format="multipart")
        assert response.status_code == 201 and response.json()["added"] == 2

    def test_counts_follow_use_and_revoke(self, staff, with_codes, make_user, store):
        fan = make_user()
        assert enter(client_of(fan), with_codes, access_code="ALPHA-1").status_code == 201
        revoked = staff.post(codes_url(with_codes, "BRAVO-2/revoke/"))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        counts = staff.get(codes_url(with_codes)).json()["counts"]
        assert counts == {"total": 3, "used": 1, "revoked": 1, "available": 1}
        listed = {row["code"]: row for row in staff.get(codes_url(with_codes)).json()["results"]}
        assert listed["ALPHA-1"]["used_by"] == fan.username

    def test_revoking_an_unknown_code_is_404(self, staff, make_event):
        assert_refused(staff.post(codes_url(make_event(), "NOPE/revoke/")), 404, "access_code_not_found")

    def test_bad_uploads_are_invalid(self, staff, make_event):
        event = make_event()
        assert_refused(staff.post(codes_url(event), {"codes": []}, format="json"), 400, "invalid")
        assert_refused(staff.post(codes_url(event), {"codes": ["x" * 65]}, format="json"), 400, "invalid")
        assert_refused(staff.post(codes_url(event), {"codes": "A1"}, format="json"), 400, "invalid")

    def test_fans_may_not_see_or_upload_codes(self, make_user, make_event):
        event, fan = make_event(), client_of(make_user())
        assert_refused(fan.get(codes_url(event)), 403, "permission_denied")
        assert_refused(fan.post(codes_url(event), {"codes": ["A"]}, format="json"), 403, "permission_denied")


# --- the event's entry fields -----------------------------------------------------------


@pytest.mark.django_db
class TestEventFields:
    def test_the_key_is_write_only(self, staff, make_event):
        event = make_event()
        response = staff.patch(f"/api/events/{event.id}/", {"entry_policy": "invite_only", "enqueue_key": SECRET,
                                                            "closed_message": "later"}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["entry_policy"] == "invite_only"
        assert "enqueue_key" not in response.json()
        event.refresh_from_db()
        assert event.enqueue_key == SECRET

    @pytest.mark.parametrize("body", [
        {"entry_policy": "invite_only"},
        {"entry_policy": "invite_only", "enqueue_key": "short"},
        {"entry_policy": "invite_only", "enqueue_key": "-----BEGIN PRIVATE KEY-----\nabc"},
    ])
    def test_invite_only_needs_a_usable_key(self, staff, make_event, body):
        response = staff.patch(f"/api/events/{make_event().id}/", body, format="json")
        assert_refused(response, 400, "invalid")
        assert list(response.json()["errors"]) == ["enqueue_key"]


# --- the admin ----------------------------------------------------------------------------


@pytest.mark.django_db
class TestAdmin:
    @pytest.fixture
    def operator(self, client, make_user):
        client.force_login(make_user("admin", is_staff=True, is_superuser=True))
        return client

    def test_upload_a_csv_and_see_the_counts_on_the_event_page(self, operator, with_codes, make_user, store):
        from django.core.files.uploadedfile import SimpleUploadedFile

        response = operator.post("/admin/events/accesscode/upload/", {
            "event": with_codes.pk, "file": SimpleUploadedFile("codes.csv", b"code\nDELTA-4\nECHO-5\nALPHA-1\n")})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert AccessCode.objects.filter(event=with_codes).count() == 5
        enter(client_of(make_user()), with_codes, access_code="DELTA-4")
        page = operator.get(f"/admin/events/event/{with_codes.pk}/change/").content.decode()
        assert 'data-used="1" data-total="5"' in page

    def test_the_revoke_action(self, operator, with_codes):
        ids = list(AccessCode.objects.filter(code="ALPHA-1").values_list("pk", flat=True))
        response = operator.post("/admin/events/accesscode/", {"action": "revoke_codes", "_selected_action": ids})
        assert response.status_code == 302
        assert AccessCode.objects.get(code="ALPHA-1").revoked_at is not None
        assert AccessCode.objects.get(code="BRAVO-2").revoked_at is None

    @pytest.mark.parametrize("policy, key, error", [
        ("invite_only", "", "An invite-only event needs the key"),
        ("invite_only", "too-short", "A shared secret needs at least 32 characters"),
        ("open", "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----", "Paste the public key"),
    ])
    def test_the_event_form_refuses_an_unusable_enqueue_key_as_the_api_does(self, operator, make_event, policy,
                                                                            key, error):
        event = make_event()
        page = operator.get(f"/admin/events/event/{event.pk}/change/")
        response = operator.post(f"/admin/events/event/{event.pk}/change/",
                                 {**admin_form_data(page), "entry_policy": policy, "enqueue_key": key})
        assert response.status_code == 200  # the form again, with the error
        assert error in response.content.decode()
        event.refresh_from_db()
        assert (event.entry_policy, event.enqueue_key) == ("open", "")
