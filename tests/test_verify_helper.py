"""The reservation service's helper (`queues.verify`) against a running QMS: offline, online, key rotation.

The QMS under test is `manage.py serve` (embedded default) with a key directory,
so `manage.py qms_rotate_key` can rotate it while it runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from queues import tokens, verify
from queues.verify import AdmissionTokenError, AdmissionTokenMiddleware, AdmissionVerifier, HasAdmissionToken

from .e2e.servers import PYTHON, ROOT, EmbeddedServer, Process, http_json, manage, wait_until

pytestmark = pytest.mark.e2e

SEED = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from events.models import Event
User = get_user_model()
events = [Event.objects.create(name=f"Verify {i}", sale_starts_at=timezone.now() - timedelta(minutes=1),
                               admit_per_minute=6000, max_active=1000, reservation_url="https://tickets.example/r")
          for i in range(2)]
fans = [User.objects.create_user(f"fan{i}") for i in range(40)]
print(json.dumps({"events": [e.id for e in events], "fans": [str(AccessToken.for_user(u)) for u in fans]}))
"""


class Qms:
    """A running QMS and the fans it knows; each `admitted_token()` admits the next fan."""

    def __init__(self, base: str, env: dict, key_dir, events: list[int], fans: list[str], server: Process):
        self.base, self.env, self.key_dir, self.events, self.server = base, env, key_dir, events, server
        self._fans = iter(fans)

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/.well-known/jwks.json"

    def admitted_token(self, event_index: int = 0) -> str:
        status, body = http_json("POST", f"{self.base}/api/events/{self.events[event_index]}/queue/",
                                 token=next(self._fans))
        assert status in (200, 201) and body["state"] == "admitted", body  # nobody ahead: admitted at once
        return body["admission"]["token"]

    def kids(self) -> list[str]:
        return [key["kid"] for key in http_json("GET", self.jwks_url)[1]["keys"]]

    def signing_key(self):
        return serialization.load_pem_private_key((self.key_dir / "signing-key.pem").read_bytes(), password=None)


@pytest.fixture(scope="module")
def qms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    server = EmbeddedServer(tmp, seed=[("shell", "-c", SEED)], QMS_SIGNING_KEY_DIR=str(tmp / "keys"))
    seeded = json.loads(server.seeded[0].splitlines()[-1])
    try:
        yield Qms(server.base, server.env, tmp / "keys", seeded["events"], seeded["fans"], server.process)
    finally:
        server.stop()


def refused(call, *args, **kwargs) -> AdmissionTokenError:
    with pytest.raises(AdmissionTokenError) as error:
        call(*args, **kwargs)
    return error.value


def resigned(token: str, key, **changes) -> str:
    """The token's claims (changed) under its own header, signed with `key`."""
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": jwt.get_unverified_header(token)["kid"]})


# --- offline ---------------------------------------------------------------------------------


def test_a_real_qms_token_verifies_offline_with_one_jwks_fetch(qms):
    verifier = AdmissionVerifier(qms.jwks_url)
    first, second = qms.admitted_token(), qms.admitted_token()
    claims = verifier.verify(first, event_id=qms.events[0])
    assert (claims["evt"], claims["iss"], claims["aud"]) == (qms.events[0], "qms", "reservation")
    assert verifier.verify(second)["sub"] != claims["sub"]
    assert verifier.keys.fetches == 1


def test_forged_tokens_are_refused(qms):
    verifier = AdmissionVerifier(qms.jwks_url)
    token = qms.admitted_token()
    other_key = serialization.load_pem_private_key(tokens.generate_private_pem().encode(), password=None)
    head, body, signature = token.split(".")
    public_pem = qms.signing_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_head = jwt.utils.base64url_encode(json.dumps(
        {"alg": "HS256", "typ": "JWT", "kid": jwt.get_unverified_header(token)["kid"]}).encode()).decode()
    mac = hmac.new(public_pem, f"{hs_head}.{body}".encode(), hashlib.sha256).digest()
    hs256 = f"{hs_head}.{body}.{jwt.utils.base64url_encode(mac).decode()}"  # PyJWT itself refuses to make one
    assert refused(verifier.verify, resigned(token, other_key)).code == "token_invalid"  # same kid, wrong key
    assert refused(verifier.verify, resigned(token, other_key, sub="999")).code == "token_invalid"
    swapped_body = jwt.utils.base64url_encode(json.dumps({**jwt.decode(token, options={"verify_signature": False}),
                                                           "evt": 12345}).encode()).decode()
    assert refused(verifier.verify, f"{head}.{swapped_body}.{signature}").code == "token_invalid"
    assert refused(verifier.verify, hs256).code == "token_invalid"  # the public key as an HMAC secret
    assert refused(verifier.verify, "not.a-token").code == "token_malformed"


def test_expired_not_yet_valid_and_misaddressed_tokens_are_refused(qms):
    verifier = AdmissionVerifier(qms.jwks_url)
    token = qms.admitted_token()
    now = int(time.time())
    signed_by_qms_key = qms.signing_key()  # the real key: only the claims are wrong
    assert refused(verifier.verify, resigned(token, signed_by_qms_key, exp=now - 5)).code == "token_expired"
    assert refused(verifier.verify, resigned(token, signed_by_qms_key, nbf=now + 300)).code == "token_not_yet_valid"
    assert refused(verifier.verify, token, event_id=qms.events[1]).code == "token_wrong_event"
    assert refused(AdmissionVerifier(qms.jwks_url, audience="shop").verify, token).code == "token_wrong_audience"
    assert refused(AdmissionVerifier(qms.jwks_url, issuer="other").verify, token).code == "token_wrong_issuer"


def test_the_jwks_is_cached_for_its_ttl_and_refetched_at_most_once_per_interval_for_unknown_keys(qms):
    now = [0.0]
    verifier = AdmissionVerifier(qms.jwks_url, cache_seconds=300, min_refetch_seconds=30, clock=lambda: now[0])
    token = qms.admitted_token()
    unknown = jwt.encode({"sub": "1"}, serialization.load_pem_private_key(
        tokens.generate_private_pem().encode(), password=None), algorithm="ES256", headers={"kid": "unknown-kid"})
    verifier.verify(token)
    assert refused(verifier.verify, unknown).code == "token_unknown_key"
    assert verifier.keys.fetches == 1, "an unknown kid right after a fetch does not refetch"
    now[0] = 31
    assert refused(verifier.verify, unknown).code == "token_unknown_key"
    assert refused(verifier.verify, unknown).code == "token_unknown_key"
    assert verifier.keys.fetches == 2, "an unknown kid refetches once per interval"
    now[0] = 200
    verifier.verify(token)
    assert verifier.keys.fetches == 2, "a known key within the TTL uses the cache"
    now[0] = 332
    verifier.verify(token)
    assert verifier.keys.fetches == 3, "after the TTL the JWKS is fetched again"


def test_cache_ttl_defaults_to_the_jwks_responses_max_age(qms):
    now = [0.0]
    verifier = AdmissionVerifier(qms.jwks_url, clock=lambda: now[0])
    token = qms.admitted_token()
    verifier.verify(token)
    now[0] = 299  # QMS serves the JWKS with max-age=300
    verifier.verify(token)
    assert verifier.keys.fetches == 1
    now[0] = 301
    verifier.verify(token)
    assert verifier.keys.fetches == 2


def test_the_helper_needs_neither_django_nor_the_qms_database(qms):
    token = qms.admitted_token()
    script = f"""
import sys
class NoDjango:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "rest_framework", "events"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoDjango())
from queues.verify import AdmissionVerifier
print(AdmissionVerifier({qms.jwks_url!r}).verify({token!r})["evt"])
"""
    result = subprocess.run([PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(qms.events[0])


# --- online ----------------------------------------------------------------------------------


def test_redeem_uses_the_token_once_and_a_replay_is_refused(qms):
    verifier = AdmissionVerifier(qms.jwks_url)
    token = qms.admitted_token()
    assert verifier.redeem(token, event_id=qms.events[0])["evt"] == qms.events[0]
    replay = refused(verifier.redeem, token)
    assert (replay.code, replay.status) == ("token_already_redeemed", 409)
    assert verifier.verify(token)["evt"] == qms.events[0], "offline checks cannot know about redemption"


# --- key rotation ------------------------------------------------------------------------------


def test_key_rotation_end_to_end(qms):
    verifier = AdmissionVerifier(qms.jwks_url)  # caches the JWKS from before the rotation
    before = qms.admitted_token()
    verifier.verify(before)
    signing, published_next = qms.kids()
    output = manage("qms_rotate_key", env=qms.env)
    assert f"signing {published_next}" in output
    # The server re-reads the key directory by itself.
    wait_until(lambda: len(qms.kids()) >= 3, 15, lambda: f"the JWKS still lists {qms.kids()}", interval=0.2)
    assert qms.kids()[0] == published_next and signing in qms.kids()

    after = qms.admitted_token()
    assert jwt.get_unverified_header(after)["kid"] == published_next
    assert verifier.verify(after)["evt"] == qms.events[0]
    assert verifier.keys.fetches == 1, "the new signing key was in the JWKS before it signed"
    assert verifier.verify(before)["evt"] == qms.events[0], "tokens signed before the rotation still verify"
    assert AdmissionVerifier(qms.jwks_url).redeem(before)["jti"], "and QMS still redeems them"
    retired = json.loads((qms.key_dir / "retired" / f"{signing}.json").read_text())
    expires = jwt.decode(before, options={"verify_signature": False})["exp"]
    assert retired["verify_until"] >= expires, "the old key is listed until its tokens expire"
    assert datetime.fromtimestamp(retired["retired_at"], UTC) <= datetime.now(UTC)


# --- Django middleware and DRF permission -------------------------------------------------------


@pytest.fixture
def protected_site(qms, settings):
    # The reservation site's sessions in signed cookies: these tests need no database, so pytest-django
    # keeps them next to the module's other tests and the module's server starts once.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.QMS_ADMISSION = {"JWKS_URL": qms.jwks_url, "EVENT_ID": qms.events[0], "PROTECTED_PATHS": ["/reserve/"],
                              "REDEEM": True}
    verify._verifiers.clear()
    yield qms
    verify._verifiers.clear()


def reservation_site():
    def booking_page(request):
        return HttpResponse(f"booking for fan {request.admission['sub']}" if hasattr(request, "admission") else "home")

    return SessionMiddleware(AdmissionTokenMiddleware(booking_page))


def request_with_session(path: str, session_from=None, **query):
    request = RequestFactory().get(path, query)
    if session_from is not None:
        request.COOKIES["sessionid"] = session_from.cookies["sessionid"].value
    return request


def test_middleware_admits_redeems_once_keeps_the_fan_in_session_and_refuses_replays(protected_site):
    site, token = reservation_site(), protected_site.admitted_token()
    fan = jwt.decode(token, options={"verify_signature": False})["sub"]
    first = site(request_with_session("/reserve/", token=token))
    assert (first.status_code, first.content) == (200, f"booking for fan {fan}".encode())
    again = site(request_with_session("/reserve/seats/", session_from=first))  # no token: the session has it
    assert (again.status_code, again.content) == (200, f"booking for fan {fan}".encode())  # the same fan, admitted
    elsewhere = site(request_with_session("/reserve/", token=token))  # the same link in another browser
    assert elsewhere.status_code == 409 and json.loads(elsewhere.content)["code"] == "token_already_redeemed"


def test_middleware_refuses_requests_without_a_valid_token_and_leaves_other_paths_alone(protected_site):
    site = reservation_site()
    missing = site(request_with_session("/reserve/"))
    assert missing.status_code == 403 and json.loads(missing.content)["code"] == "admission_required"
    forged = site(request_with_session("/reserve/", token=protected_site.admitted_token()[:-4] + "AAAA"))
    assert forged.status_code == 403 and json.loads(forged.content)["code"] == "token_invalid"
    assert site(request_with_session("/about/")).content == b"home"


class BookingView(APIView):
    permission_classes = [HasAdmissionToken]
    authentication_classes: list = []

    def get(self, request):
        return Response({"fan": request.admission["sub"]})


def test_drf_permission_needs_an_admission_token_header(protected_site):
    token = protected_site.admitted_token()
    ok = BookingView.as_view()(APIRequestFactory().get("/api/bookings/", HTTP_X_ADMISSION_TOKEN=token))
    assert ok.status_code == 200 and ok.data["fan"] == jwt.decode(token, options={"verify_signature": False})["sub"]
    for headers, code in (({}, "admission_required"), ({"HTTP_X_ADMISSION_TOKEN": token[:-4] + "AAAA"},
                                                        "token_invalid")):
        denied = BookingView.as_view()(APIRequestFactory().get("/api/bookings/", **headers))
        assert denied.status_code == 403 and denied.data["code"] == code
