"""Admission tokens: verifiable with PyJWT from the JWKS alone; every forgery refused by the verify endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone
from rest_framework.test import APIClient

from queues import admission, tokens
from queues.models import Admission
from queues.verify import REQUIRED_CLAIMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def admitted(store, make_event, make_user):
    event = make_event()
    fan = make_user()
    status = admission.join(event, fan)
    assert status.state == "admitted"
    return status.admission


def jwks_keys(client: APIClient) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"]: jwt.PyJWK(key) for key in response.json()["keys"]}


def verify(client: APIClient, token: str, **extra) -> tuple[int, dict]:
    response = client.post("/api/admissions/verify/", {"token": token, **extra}, format="json")
    return response.status_code, response.json()


def reforge(admission_row: Admission, header: dict | None = None, **claims) -> str:
    """A token with the real claims changed, signed with the real key (only the ledger or claims are wrong)."""
    payload = {**jwt.decode(admission_row.token, options={"verify_signature": False}), **claims}
    return tokens.sign(payload) if header is None else jwt.encode(payload, tokens.keyring().signing_key,
                                                                 algorithm="ES256", headers=header)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_token_verifies_with_pyjwt_using_only_the_jwks(admitted):
    keys = jwks_keys(APIClient())
    header = jwt.get_unverified_header(admitted.token)
    assert header["alg"] == "ES256"
    claims = jwt.decode(admitted.token, keys[header["kid"]], algorithms=["ES256"], audience="reservation",
                        issuer="qms")
    assert claims["sub"] == str(admitted.user_id)
    assert claims["evt"] == admitted.event_id
    assert claims["jti"] == admitted.jti
    assert claims["exp"] - claims["iat"] == admitted.event.token_ttl_seconds
    assert set(REQUIRED_CLAIMS) <= set(claims)


def test_verify_endpoint_accepts_a_real_token(admitted):
    status, body = verify(APIClient(), admitted.token, event=admitted.event_id)
    assert status == 200
    assert body["valid"] is True and body["claims"]["jti"] == admitted.jti and body["redeemed"] is False


def test_redeem_is_single_use(admitted):
    client = APIClient()
    first_status, first = verify(client, admitted.token, redeem=True)
    second_status, second = verify(client, admitted.token, redeem=True)
    assert (first_status, first["redeemed"]) == (200, True)
    assert (second_status, second["code"]) == (409, "token_already_redeemed")


def test_tampered_payload_is_refused(admitted):
    head, payload, signature = admitted.token.split(".")
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    forged = ".".join([head, b64({**claims, "sub": "999999"}), signature])
    status, body = verify(APIClient(), forged)
    assert (status, body["code"]) == (400, "token_invalid")


def test_alg_none_is_refused(admitted):
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    status, body = verify(APIClient(), forged)
    assert (status, body["code"]) == (400, "token_invalid")


def test_hs256_signed_with_the_public_key_is_refused(admitted):
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    public_pem = tokens.keyring().signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = {"alg": "HS256", "typ": "JWT", "kid": tokens.keyring().signing_kid}
    signing_input = f"{b64(head)}.{b64(claims)}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    forged = signing_input.decode() + "." + mac.decode()
    status, body = verify(APIClient(), forged)
    assert (status, body["code"]) == (400, "token_invalid")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"exp": int(time.time()) - 10}, "token_expired"),
        ({"nbf": int(time.time()) + 600}, "token_not_yet_valid"),
        ({"aud": "someone-else"}, "token_wrong_audience"),
        ({"iss": "evil"}, "token_wrong_issuer"),
        ({"jti": "never-issued"}, "token_unknown"),
    ],
)
def test_bad_claims_are_refused_with_their_code(admitted, change, code):
    status, body = verify(APIClient(), reforge(admitted, **change))
    assert (status, body["code"]) == (400, code)


def test_token_for_another_event_is_refused(admitted):
    status, body = verify(APIClient(), admitted.token, event=admitted.event_id + 1)
    assert (status, body["code"]) == (400, "token_wrong_event")


def test_unknown_key_is_refused(admitted):
    other_key = serialization.load_pem_private_key(tokens.generate_private_pem().encode(), password=None)
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    forged = jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": "not-ours"})
    status, body = verify(APIClient(), forged)
    assert (status, body["code"]) == (400, "token_unknown_key")


def test_missing_claim_is_refused(admitted):
    claims = jwt.decode(admitted.token, options={"verify_signature": False})
    del claims["evt"]
    status, body = verify(APIClient(), tokens.sign(claims))
    assert (status, body["code"]) == (400, "token_invalid")


def test_garbage_is_refused(admitted):
    status, body = verify(APIClient(), "not-a-token")
    assert (status, body["code"]) == (400, "token_malformed")


def test_released_token_no_longer_verifies(admitted):
    client = APIClient()
    response = client.post("/api/admissions/release/", {"token": admitted.token}, format="json")
    assert response.status_code == 200 and response.json()["already_released"] is False
    again = client.post("/api/admissions/release/", {"token": admitted.token}, format="json")
    assert again.status_code == 200 and again.json()["already_released"] is True
    status, body = verify(client, admitted.token)
    assert (status, body["code"]) == (409, "token_released")


def test_rotation_keeps_old_public_keys_in_the_jwks(admitted, settings):
    old_pem = tokens.keyring().signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings.QMS_SIGNING_KEY = tokens.generate_private_pem()
    settings.QMS_EXTRA_VERIFICATION_KEYS = old_pem
    tokens.reset_keyring()
    try:
        keys = jwks_keys(APIClient())
        assert len(keys) == 2
        status, _ = verify(APIClient(), admitted.token)  # signed before the rotation
        assert status == 200
    finally:
        tokens.reset_keyring()


def test_keyring_refuses_a_non_p256_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError):
        tokens.Keyring.from_pems(rsa_pem)


def test_expired_admission_cannot_be_redeemed(admitted):
    Admission.objects.filter(pk=admitted.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # the token's own exp is what the verifier sees
    status, body = verify(APIClient(), reforge(admitted, exp=int(time.time()) - 1), redeem=True)
    assert (status, body["code"]) == (400, "token_expired")


def test_claims_for_builds_exactly_the_claims_verification_requires(settings):
    issued = timezone.now()
    claims = tokens.claims_for(event_id=7, user_id=42, issued_at=issued, ttl_seconds=300)
    assert list(claims) == list(REQUIRED_CLAIMS)
    assert (claims["sub"], claims["evt"], claims["exp"] - claims["iat"]) == ("42", 7, 300)
    assert tokens.decode(tokens.sign(claims), event_id=7) == claims


def _kid_in_a_new_process(key_file) -> str:
    code = ("import django; django.setup(); from queues import tokens; "
            "print(tokens.keyring().signing_kid)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "qms_project.settings",
           "QMS_GENERATED_SIGNING_KEY_FILE": str(key_file)}
    for name in ("QMS_SIGNING_KEY", "QMS_SIGNING_KEY_FILE", "QMS_SIGNING_KEY_DIR"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_embedded_default_signs_with_one_key_kept_in_an_owner_only_file(settings, tmp_path):
    key_file = tmp_path / "var" / "signing-key.pem"
    settings.QMS_SIGNING_KEY, settings.QMS_SIGNING_KEY_DIR = "", ""
    settings.QMS_GENERATED_SIGNING_KEY_FILE = str(key_file)
    tokens.reset_keyring()
    try:
        first = tokens.keyring().signing_kid
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        tokens.reset_keyring()  # a restart
        assert tokens.keyring().signing_kid == first
        assert _kid_in_a_new_process(key_file) == first  # another process of the same project folder
    finally:
        tokens.reset_keyring()
