"""Fans of a platform with its own login: QMS takes its OpenID Connect provider's access tokens over HTTP and
on the socket, verified offline against the provider's JWKS, served here by a stand-in provider over real
HTTP; and the socket's token users come from the per-process memory, not a query per connect."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from channels.db import database_sync_to_async
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.utils import CursorWrapper
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from queues import oidc
from queues.known_users import KnownUsers, known_users
from queues.protocol import CloseCode
from tests.sockets import ORIGIN, closed_with, open_socket, session_headers, socket

ISSUER = "https://login.booking.example/"
AUDIENCE = "qms"


class StandInProvider:
    """An identity provider of its own: an RSA and an EC signing key, its JWKS served at /jwks.json."""

    def __init__(self):
        self.keys = {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     "ec-1": ec.generate_private_key(ec.SECP256R1())}
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                provider.fetches += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            algorithm = jwt.algorithms.RSAAlgorithm if kid.startswith("rsa") else jwt.algorithms.ECAlgorithm
            entry = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**entry, "kid": kid, "use": "sig"})
        # An encryption key, as real providers list: skipped, and it hides none of the signing keys.
        keys.append({**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys["rsa-1"].public_key())),
                     "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP"})
        return {"keys": keys}

    def token(self, sub: str = "fan-42", *, kid: str = "rsa-1", key=None, **claims) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}
        algorithm = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(payload, key or self.keys[kid], algorithm=algorithm, headers={"kid": kid})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp(settings):
    provider = StandInProvider()
    settings.QMS_OIDC_ISSUER, settings.QMS_OIDC_AUDIENCE = ISSUER, AUDIENCE
    settings.QMS_OIDC_JWKS_URL = provider.jwks_url
    known_users.clear()
    yield provider
    provider.close()
    oidc._providers.clear()
    known_users.clear()


def foreign_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unsigned(idp) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "fan-42", "exp": now + 300}, None, algorithm="none")


def hs256_with_the_public_key(idp) -> str:
    """The classic key confusion: HS256 "signed" with the provider's public key as the secret."""
    public = idp.keys["rsa-1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = jwt.utils.base64url_encode(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "fan-42",
                                                  "exp": now + 300}).encode())
    import hmac
    signature = hmac.new(public, header + b"." + body, "sha256").digest()
    return b".".join([header, body, jwt.utils.base64url_encode(signature)]).decode()


REFUSED = {
    "foreign_issuer": (lambda idp: idp.token(key=foreign_key(), iss="https://evil.example/"), "oidc_wrong_issuer"),
    "wrong_audience": (lambda idp: idp.token(aud="another-app"), "oidc_wrong_audience"),
    "expired": (lambda idp: idp.token(exp=int(time.time()) - 120), "oidc_token_expired"),
    "unknown_key": (lambda idp: idp.token(kid="rsa-stranger", key=foreign_key()), "oidc_unknown_key"),
    "bad_signature": (lambda idp: idp.token(key=foreign_key()), "oidc_token_invalid"),
    "alg_none": (unsigned, "oidc_token_invalid"),
    "no_subject": (lambda idp: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
                                          idp.keys["ec-1"], algorithm="ES256", headers={"kid": "ec-1"}),
                   "oidc_token_invalid"),
    # HS256 is SimpleJWT's own algorithm: SimpleJWT checks it against QMS's secret, and refuses it.
    "hs256_key_confusion": (hs256_with_the_public_key, "token_not_valid"),
}


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- over HTTP ---------------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_provider_token_joins_over_http(idp, store, make_event, kid):
    event = make_event(paused=True)
    joined = bearer(idp.token(kid=kid)).post(f"/api/events/{event.id}/queue/")
    assert joined.status_code == 201, joined.content
    assert joined.json()["state"] == "waiting"
    user = get_user_model().objects.get(username__startswith=oidc.USERNAME_PREFIX)
    assert not user.has_usable_password()  # no password exists, so none is ever hashed


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_provider_token_gets_a_401_with_a_code(idp, store, make_event, case):
    event = make_event(paused=True)
    make_token, code = REFUSED[case]
    response = bearer(make_token(idp)).post(f"/api/events/{event.id}/queue/")
    assert response.status_code == 401, response.content
    assert response.json()["code"] == code and response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not get_user_model().objects.filter(username__startswith=oidc.USERNAME_PREFIX).exists()


@pytest.mark.django_db
def test_the_same_subject_twice_is_the_same_local_user(idp, store, make_event):
    event = make_event(paused=True)
    url = f"/api/events/{event.id}/queue/"
    assert bearer(idp.token("fan-7", kid="rsa-1")).post(url).status_code == 201
    known_users.clear()  # as another process would: found by its username, not created again
    again = bearer(idp.token("fan-7", kid="ec-1")).post(url)
    assert again.status_code == 200 and again.json()["ticket"] == 1  # joining again keeps the ticket
    assert get_user_model().objects.filter(username__startswith=oidc.USERNAME_PREFIX).count() == 1
    assert bearer(idp.token("fan-8")).post(url).json()["ticket"] == 2  # another subject, another fan


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_arrivals_of_one_subject_make_one_user(idp):
    claims = oidc.provider().claims(idp.token("fan-race"))
    barrier = threading.Barrier(8)

    def arrive(_):
        barrier.wait(timeout=10)
        try:
            return oidc.local_user(claims).pk
        finally:
            connection.close()  # this worker thread's own connection

    with ThreadPoolExecutor(8) as pool:
        pks = set(pool.map(arrive, range(8)))
    assert len(pks) == 1
    assert get_user_model().objects.filter(username=oidc.username_for(claims)).count() == 1


@pytest.mark.django_db
def test_a_deactivated_subject_is_refused(idp, store, make_event):
    event = make_event(paused=True)
    url = f"/api/events/{event.id}/queue/"
    assert bearer(idp.token("fan-9")).post(url).status_code == 201
    get_user_model().objects.filter(username__startswith=oidc.USERNAME_PREFIX).update(is_active=False)
    known_users.clear()  # .update() sends no signal: as in another process once the memory's TTL has passed
    refused = bearer(idp.token("fan-9")).get(url)
    assert (refused.status_code, refused.json()["code"]) == (401, "user_inactive")


@pytest.mark.django_db
def test_a_new_key_is_fetched_once_and_junk_kids_do_not_refetch(idp, store, make_event):
    event = make_event(paused=True)
    url = f"/api/events/{event.id}/queue/"
    assert bearer(idp.token("a")).post(url).status_code == 201
    assert idp.fetches == 1
    assert bearer(idp.token("b")).post(url).status_code == 201
    assert idp.fetches == 1  # cached
    # The provider rotates in a new key; QMS's cache does not list it yet: one refetch, then it verifies.
    idp.keys["rsa-2"] = foreign_key()
    oidc.provider().keys._last_attempt = float("-inf")  # the minimum interval since the first fetch has passed
    assert bearer(idp.token("c", kid="rsa-2")).post(url).status_code == 201
    assert idp.fetches == 2
    for _ in range(3):  # unknown kids within the minimum interval: refused without asking the provider again
        assert bearer(idp.token("d", kid="rsa-junk", key=foreign_key())).post(url).json()["code"] == "oidc_unknown_key"
    assert idp.fetches == 2


def test_without_an_issuer_configured_provider_tokens_are_simplejwts_to_refuse(settings):
    settings.QMS_OIDC_ISSUER = ""
    assert oidc.provider() is None
    assert not oidc.is_provider_token(jwt.encode({"sub": "x"}, foreign_key(), algorithm="RS256"))


# --- on the socket ------------------------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["query", "subprotocol"])
async def test_a_provider_token_joins_on_the_socket(idp, realtime, make_event, via):
    event = await database_sync_to_async(make_event)(paused=True)
    token = await database_sync_to_async(idp.token)(kid="ec-1")
    if via == "query":
        comm, queued = await open_socket(event.id, None, query=f"token={token}")
    else:
        comm = socket(event.id, subprotocols=["qms.jwt", token])
        connected, subprotocol = await comm.connect(timeout=5)
        assert connected and subprotocol == "qms.jwt"
        queued = await comm.receive_json_from(timeout=5)
    assert queued["type"] == "queued" and queued["ticket"] == 1
    await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_refused_provider_token_closes_the_socket_with_4401(idp, realtime, make_event, case):
    event = await database_sync_to_async(make_event)(paused=True)
    make_token, _code = REFUSED[case]
    comm = socket(event.id, query=f"token={await database_sync_to_async(make_token)(idp)}")
    await comm.connect(timeout=5)
    assert (await comm.receive_json_from(timeout=5))["code"] == "not_authenticated"
    assert await closed_with(comm) == CloseCode.NOT_AUTHENTICATED


# --- the socket's user lookup ---------------------------------------------------------------------------------

@pytest.fixture
def user_queries(monkeypatch):
    """Every SQL statement that reads or writes the user table, from any thread (the socket's lookups run on
    worker threads, each with its own connection)."""
    seen: list[str] = []
    execute = CursorWrapper.execute

    def counting(self, sql, params=None):
        if '"auth_user"' in sql:
            seen.append(sql)
        return execute(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", counting)
    return seen


async def connect_times(event_id: int, times: int, **kw) -> None:
    for _ in range(times):
        comm, queued = await open_socket(event_id, **kw)
        assert queued["type"] == "queued"
        await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_repeated_jwt_connects_look_the_user_up_at_most_once(realtime, make_event, make_user, user_queries):
    known_users.clear()
    event = await database_sync_to_async(make_event)(paused=True)
    token = await database_sync_to_async(lambda: str(AccessToken.for_user(make_user())))()
    user_queries.clear()
    await connect_times(event.id, 5, headers=None, query=f"token={token}")
    assert len(user_queries) <= 1, user_queries


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_repeated_provider_token_connects_look_the_user_up_at_most_once(idp, realtime, make_event,
                                                                               user_queries):
    event = await database_sync_to_async(make_event)(paused=True)
    token = await database_sync_to_async(idp.token)()
    await database_sync_to_async(oidc.local_user)(oidc.provider().claims(token))  # the fan's first arrival made the row
    known_users.clear()
    user_queries.clear()
    await connect_times(event.id, 5, headers=None, query=f"token={token}")
    assert len(user_queries) <= 1, user_queries


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_repeated_session_connects_read_the_user_row_at_most_once(realtime, make_event, make_user,
                                                                        user_queries):
    known_users.clear()
    event = await database_sync_to_async(make_event)(paused=True)
    headers = await database_sync_to_async(session_headers)(await database_sync_to_async(make_user)())
    user_queries.clear()
    await connect_times(event.id, 5, headers=headers)
    assert len(user_queries) <= 1, user_queries


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_user_deactivated_in_this_process_is_refused_at_the_next_connect(realtime, make_event, make_user):
    event = await database_sync_to_async(make_event)(paused=True)
    fan = await database_sync_to_async(make_user)()
    token = str(await database_sync_to_async(AccessToken.for_user)(fan))
    await connect_times(event.id, 1, headers=[ORIGIN], query=f"token={token}")
    fan.is_active = False
    await database_sync_to_async(fan.save)()  # the save signal forgets the remembered user
    comm = socket(event.id, [ORIGIN], query=f"token={token}")
    await comm.connect(timeout=5)
    assert (await comm.receive_json_from(timeout=5))["code"] == "not_authenticated"
    assert await closed_with(comm) == CloseCode.NOT_AUTHENTICATED


@pytest.mark.django_db
def test_a_remembered_user_is_read_again_after_the_ttl(make_user):
    """Deactivated in another process (no signal here): refused once the memory's TTL has passed."""
    now = [0.0]
    users = KnownUsers(ttl=60, clock=lambda: now[0])
    fan = make_user()
    assert users.load(fan.pk) == fan
    get_user_model().objects.filter(pk=fan.pk).update(is_active=False)  # .update(): no signal
    now[0] = 59.0
    assert users.load(fan.pk) == fan and users.loads == 1  # still remembered within the TTL
    now[0] = 60.0
    assert users.load(fan.pk) is None and users.loads == 2


def test_the_memory_is_bounded():
    users = KnownUsers(max_users=3)
    for pk in range(10):
        users.remember(type("U", (), {"pk": pk, "is_active": True})())
    assert [users.get(pk) is not None for pk in range(10)] == [False] * 7 + [True] * 3
