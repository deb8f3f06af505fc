"""`manage.py qms_gate_config`: the proxy configurations it prints (nginx is run for real in
tests/e2e/test_gate_nginx.py; Traefik and Caddy are not installed here, so their key lines are checked)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from events.models import ProtectedRoute


def gate_config(proxy: str, event, *extra: str) -> str:
    out = io.StringIO()
    call_command("qms_gate_config", proxy, "--event", str(event.id), "--origin", "http://127.0.0.1:9000",
                 "--listen", "8080", *extra, stdout=out)
    return out.getvalue()


@pytest.fixture
def event(make_event):
    event = make_event()
    ProtectedRoute.objects.create(event=event, host="shop.example.com", path_prefix="/")
    return event


def test_traefik_asks_the_gate_with_redirecting_refusals_and_passes_its_headers_and_cookie(event):
    config = gate_config("traefik", event, "--server-name", "shop.example.com")

    assert 'address: "http://127.0.0.1:8000/gate/auth?deny=redirect"' in config
    assert "authResponseHeaders: [X-QMS-User, X-QMS-Event, X-QMS-Admission, X-QMS-Bypass]" in config
    assert f"middlewares: [qms-gate-{event.id}]" in config
    assert "Host(`shop.example.com`) && PathRegexp(`^/(events|api|ws|static|accounts|gate|jsi18n|\\.well-known)/`)" \
        in config
    assert '- url: "http://127.0.0.1:9000"' in config
    assert f"--entryPoints.qms-gate-{event.id}.address=:8080" in config


def test_caddy_asks_the_gate_strips_forged_identity_headers_and_copies_the_gates(event):
    config = gate_config("caddy", event, "--qms", "http://10.0.0.5:8000")

    assert config.count(":8080 {") == 1
    assert "forward_auth 10.0.0.5:8000 {" in config
    assert "uri /gate/auth?deny=redirect" in config
    assert "copy_headers X-QMS-User X-QMS-Event X-QMS-Admission X-QMS-Bypass" in config
    for header in ("X-QMS-User", "X-QMS-Event", "X-QMS-Admission", "X-QMS-Bypass"):
        assert f"request_header -{header}" in config
    assert "@qms path /events/* /api/* /ws/* /static/* /accounts/* /gate/* /jsi18n/* /.well-known/*" in config
    assert "reverse_proxy http://127.0.0.1:9000" in config


def test_nginx_https_form_listens_with_the_certificate(event):
    config = gate_config("nginx", event, "--server-name", "shop.example.com", "--tls-certificate", "/etc/ssl/shop.pem",
                         "--tls-key", "/etc/ssl/shop.key")

    assert "listen 8080 ssl http2;" in config
    assert "ssl_certificate /etc/ssl/shop.pem;" in config
    assert "ssl_certificate_key /etc/ssl/shop.key;" in config
    assert "server_name shop.example.com;" in config


def test_the_header_names_the_routes_to_add_when_the_event_has_none(make_event):
    config = gate_config("nginx", make_event())

    assert "NONE YET" in config


@pytest.mark.parametrize("origin", ["ftp://files.example", "http://shop.example/app", "http://user@shop.example",
                                    "shop.example:9000"])
def test_an_origin_that_is_not_a_bare_server_url_is_refused(event, origin):
    with pytest.raises(CommandError):
        call_command("qms_gate_config", "nginx", "--event", str(event.id), "--origin", origin, "--listen", "8080",
                     stdout=io.StringIO())


def test_an_unknown_event_is_refused(db):
    with pytest.raises(CommandError, match="No event"):
        call_command("qms_gate_config", "nginx", "--event", "999999", "--origin", "http://127.0.0.1:9000",
                     "--listen", "8080", stdout=io.StringIO())
