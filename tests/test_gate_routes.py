"""An event's protected routes and bypass rules (issue 15): what the model, the admin and the staff API accept,
each refusal with a stable code; no two events claim one route; lists replaced whole; rules kept in order."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers
from rest_framework.test import APIClient

from events.models import BypassRule, ProtectedRoute
from events.serializers import EventSerializer
from tests.admin_forms import admin_form_data

pytestmark = pytest.mark.django_db

BAD_HOSTS = ["https://shop.example", "shop.example/tickets", "user@shop.example", "*.shop.example", "shop.example.",
             "shop..example", "shop.example:0", "shop.example:99999", "shop example", ""]
BAD_PREFIXES = ["tickets/", "//evil.example/", "/a/../checkout", "/a/%2e%2e/checkout", "/a?b=1", "/a#b", "/a b",
                "/a\\b", "/caf%zz", ""]


@pytest.fixture
def staff(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(is_staff=True))
    return client


def codes_of(invalid: ValidationError) -> dict[str, list[str]]:
    return {field: [error.code for error in errors] for field, errors in invalid.error_dict.items()}


def cleaned(instance):
    instance.full_clean()
    return instance


# --- the model (what the admin form runs) ------------------------------------------------------------------

def test_a_route_is_stored_as_the_gate_compares_it(make_event):
    route = cleaned(ProtectedRoute(event=make_event(), host=" Shop.Example:443 ", path_prefix="/tickets/"))
    assert (route.host, route.path_prefix) == ("shop.example", "/tickets/")
    assert cleaned(ProtectedRoute(event=route.event, host="Bücher.example:8443")).host == "xn--bcher-kva.example:8443"
    assert cleaned(ProtectedRoute(event=route.event, host="[::1]:8080", path_prefix="/")).host == "[::1]:8080"


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_host_that_is_not_a_plain_host_is_invalid_host(make_event, host):
    with pytest.raises(ValidationError) as refused:
        cleaned(ProtectedRoute(event=make_event(), host=host, path_prefix="/"))
    assert "invalid_host" in codes_of(refused.value)["host"]


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_a_prefix_the_gate_could_not_match_is_invalid_path_prefix(make_event, prefix):
    with pytest.raises(ValidationError) as refused:
        cleaned(ProtectedRoute(event=make_event(), host="shop.example", path_prefix=prefix))
    assert "invalid_path_prefix" in codes_of(refused.value)["path_prefix"]


def test_a_route_another_event_claims_is_refused_naming_that_event(make_event):
    holder = make_event(name="Spring tour")
    ProtectedRoute.objects.create(event=holder, host="shop.example", path_prefix="/tickets/")
    with pytest.raises(ValidationError) as refused:
        cleaned(ProtectedRoute(event=make_event(), host="SHOP.example:443", path_prefix="/tickets/"))
    assert codes_of(refused.value) == {"host": ["route_taken"]}
    assert f'"Spring tour" (id {holder.pk})' in refused.value.message_dict["host"][0]
    # The same host under another prefix is another route: free.
    cleaned(ProtectedRoute(event=make_event(), host="shop.example", path_prefix="/merch/"))


def test_the_database_refuses_two_events_on_one_route(make_event):
    ProtectedRoute.objects.create(event=make_event(), host="shop.example", path_prefix="/")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProtectedRoute.objects.create(event=make_event(), host="shop.example", path_prefix="/")


@pytest.mark.parametrize(("kind", "name", "value", "stored"), [
    ("address", "", " 203.0.113.7 ", ("", "203.0.113.7/32")),
    ("address", "", "10.0.0.0/8", ("", "10.0.0.0/8")),
    ("address", "", "2001:db8::/32", ("", "2001:db8::/32")),
    ("path_prefix", "", "/static/", ("", "/static/")),
    ("path_suffix", "", ".css", ("", ".css")),
    ("header", "X-Partner-Key", "s3cret", ("x-partner-key", "s3cret")),
    ("cookie", "Partner", "s3cret", ("Partner", "s3cret")),
    ("staff", "", "", ("", "")),
])
def test_a_bypass_rule_is_stored_as_the_gate_compares_it(make_event, kind, name, value, stored):
    rule = cleaned(BypassRule(event=make_event(), kind=kind, name=name, value=value))
    assert (rule.name, rule.value) == stored


@pytest.mark.parametrize(("kind", "name", "value", "field", "code"), [
    ("address", "", "10.0.0.1/8", "value", "invalid_cidr"),  # host bits set: refused, not guessed at
    ("address", "", "shop.example", "value", "invalid_cidr"),
    ("address", "", "", "value", "invalid_cidr"),
    ("address", "X-Real-IP", "10.0.0.0/8", "name", "name_not_used"),
    ("path_prefix", "", "static/", "value", "invalid_path_prefix"),
    ("path_prefix", "", "/static/../checkout", "value", "invalid_path_prefix"),
    ("path_suffix", "", "", "value", "invalid_path_suffix"),
    ("path_suffix", "", ".css?x", "value", "invalid_path_suffix"),
    ("header", "", "s3cret", "name", "invalid_name"),
    ("header", "X Partner", "s3cret", "name", "invalid_name"),
    ("header", "X-Partner", "", "value", "invalid_value"),  # an empty secret would let anyone through
    ("cookie", "partner", "a;b", "value", "invalid_value"),
    ("staff", "", "yes", "value", "value_not_used"),
])
def test_a_bypass_rule_that_cannot_match_as_meant_is_refused(make_event, kind, name, value, field, code):
    with pytest.raises(ValidationError) as refused:
        cleaned(BypassRule(event=make_event(), kind=kind, name=name, value=value))
    assert code in codes_of(refused.value)[field]


def test_a_session_cap_below_the_idle_timeout_is_refused(make_event):
    event = make_event()
    event.session_idle_seconds, event.session_max_seconds = 900, 600
    with pytest.raises(ValidationError) as refused:
        event.full_clean()
    assert codes_of(refused.value) == {"session_max_seconds": ["session_max_below_idle"]}


# --- the admin ------------------------------------------------------------------------------------------------

@pytest.fixture
def admin(client, make_user):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def change_page(admin, event) -> tuple[str, dict]:
    url = f"/admin/events/event/{event.id}/change/"
    page = admin.get(url)
    assert page.status_code == 200
    return url, admin_form_data(page)


def with_rows(data: dict, prefix: str, rows: list[dict]) -> dict:
    """`data` plus new inline rows under the formset `prefix` (routes, bypass_rules)."""
    start = int(data[f"{prefix}-TOTAL_FORMS"])
    extra = {f"{prefix}-{start + i}-{field}": value for i, row in enumerate(rows) for field, value in row.items()}
    return {**data, **extra, f"{prefix}-TOTAL_FORMS": str(start + len(rows))}


def test_the_admin_saves_routes_and_bypass_rules_with_the_event(admin, make_event):
    event = make_event()
    url, data = change_page(admin, event)
    data = with_rows(data, "routes", [{"host": "Shop.Example", "path_prefix": "/tickets/"}])
    data = with_rows(data, "bypass_rules", [{"position": "1", "kind": "address", "value": "10.0.0.0/8"}])
    assert admin.post(url, data).status_code == 302
    assert list(event.routes.values_list("host", "path_prefix")) == [("shop.example", "/tickets/")]
    assert list(event.bypass_rules.values_list("kind", "value")) == [("address", "10.0.0.0/8")]


def test_the_admin_names_the_event_that_holds_a_route(admin, make_event):
    holder = make_event(name="Spring tour")
    ProtectedRoute.objects.create(event=holder, host="shop.example", path_prefix="/tickets/")
    event = make_event()
    url, data = change_page(admin, event)
    answer = admin.post(url, with_rows(data, "routes", [{"host": "shop.example", "path_prefix": "/tickets/"}]))
    assert answer.status_code == 200  # the form again
    errors = answer.context["inline_admin_formsets"][0].formset.errors
    assert errors == [{"host": [f'shop.example/tickets/ is already protected by the event "Spring tour" '
                                f'(id {holder.pk}).']}]
    assert not event.routes.exists()


def test_the_admin_refuses_a_bypass_rule_with_its_reason(admin, make_event):
    event = make_event()
    url, data = change_page(admin, event)
    answer = admin.post(url, with_rows(data, "bypass_rules", [{"position": "0", "kind": "address", "value": "nope"}]))
    assert answer.status_code == 200
    assert "value" in answer.context["inline_admin_formsets"][1].formset.errors[0]
    assert not event.bypass_rules.exists()


def test_the_admin_lists_bypass_rules_in_position_order(admin, make_event):
    event = make_event()
    for position, suffix in [(2, ".js"), (0, ".css"), (1, ".png")]:  # created out of order
        BypassRule.objects.create(event=event, position=position, kind="path_suffix", value=suffix)
    page = admin.get(f"/admin/events/event/{event.id}/change/")
    forms = page.context["inline_admin_formsets"][1].formset.forms
    assert [form.instance.value for form in forms] == [".css", ".png", ".js"]


def test_the_admin_refuses_a_session_cap_below_the_idle_timeout(admin, make_event):
    event = make_event()
    url, data = change_page(admin, event)
    answer = admin.post(url, {**data, "session_idle_seconds": "900", "session_max_seconds": "600"})
    assert answer.status_code == 200
    assert "session_max_seconds" in answer.context["adminform"].form.errors


# --- the staff API ----------------------------------------------------------------------------------------

RULES = [
    {"kind": "path_suffix", "value": ".css", "note": "assets"},
    {"kind": "header", "name": "X-Monitor", "value": "probe-key"},
    {"kind": "address", "value": "203.0.113.7"},
]


def test_the_api_round_trips_routes_and_rules(staff, make_event):
    event = make_event()
    sent = {"routes": [{"host": "Shop.Example:443", "path_prefix": "/tickets/"}, {"host": "shop.example:8443"}],
            "bypass_rules": RULES}
    answer = staff.patch(f"/api/events/{event.id}/", sent, format="json")
    assert answer.status_code == 200, answer.json()
    read = staff.get(f"/api/events/{event.id}/").json()
    assert read == answer.json()
    assert [(r["host"], r["path_prefix"]) for r in read["routes"]] == [("shop.example", "/tickets/"),
                                                                       ("shop.example:8443", "/")]
    assert [(r["position"], r["kind"], r["name"], r["value"]) for r in read["bypass_rules"]] == [
        (0, "path_suffix", "", ".css"), (1, "header", "x-monitor", "probe-key"), (2, "address", "", "203.0.113.7/32")]


def test_the_api_keeps_bypass_rules_in_the_order_sent(staff, make_event):
    event = make_event()
    staff.patch(f"/api/events/{event.id}/", {"bypass_rules": RULES}, format="json")
    staff.patch(f"/api/events/{event.id}/", {"bypass_rules": RULES[::-1]}, format="json")
    assert [rule.kind for rule in event.bypass_rules.all()] == ["address", "header", "path_suffix"]
    assert [rule.position for rule in event.bypass_rules.all()] == [0, 1, 2]


def test_a_list_sent_replaces_them_all_and_a_list_left_out_is_kept(staff, make_event):
    event = make_event()
    url = f"/api/events/{event.id}/"
    staff.patch(url, {"routes": [{"host": "a.example"}, {"host": "b.example"}], "bypass_rules": RULES}, format="json")
    staff.patch(url, {"routes": [{"host": "c.example"}]}, format="json")
    assert list(event.routes.values_list("host", flat=True)) == ["c.example"]
    assert event.bypass_rules.count() == len(RULES)  # not sent: untouched
    staff.patch(url, {"bypass_rules": []}, format="json")
    assert not event.bypass_rules.exists()
    # PUT of the event as read (its own routes included) is no conflict with itself.
    body = {key: value for key, value in staff.get(url).json().items() if value is not None}
    assert staff.put(url, body, format="json").status_code == 200
    assert list(event.routes.values_list("host", flat=True)) == ["c.example"]


def test_the_api_creates_an_event_with_its_routes(staff):
    answer = staff.post("/api/events/", {"name": "Gate sale", "reservation_url": "https://shop.example/",
                                         "routes": [{"host": "shop.example", "path_prefix": "/checkout/"}],
                                         "bypass_rules": [{"kind": "staff"}]}, format="json")
    assert answer.status_code == 201, answer.json()
    assert ProtectedRoute.objects.get().event_id == answer.json()["id"]
    assert BypassRule.objects.get().kind == "staff"


def refused(answer) -> dict:
    assert answer.status_code == 400, answer.json()
    body = answer.json()
    assert body["code"] == "invalid"
    return body


def test_the_api_names_the_event_holding_a_route_with_route_taken(staff, make_event):
    holder = make_event(name="Spring tour")
    ProtectedRoute.objects.create(event=holder, host="shop.example", path_prefix="/")
    event = make_event()
    body = refused(staff.patch(f"/api/events/{event.id}/", {
        "routes": [{"host": "free.example"}, {"host": "shop.example", "path_prefix": "/"}]}, format="json"))
    assert body["codes"] == {"routes": {"1": {"host": ["route_taken"]}}}  # by index in the list sent
    assert f'"Spring tour" (id {holder.pk})' in body["errors"]["routes"]["1"]["host"][0]
    assert not event.routes.exists()


@pytest.mark.parametrize(("sent", "codes"), [
    ({"routes": [{"host": "https://shop.example"}]}, {"routes": {"0": {"host": ["invalid_host"]}}}),
    ({"routes": [{"host": "shop.example", "path_prefix": "tickets"}]},
     {"routes": {"0": {"path_prefix": ["invalid_path_prefix"]}}}),
    ({"routes": [{"host": "shop.example"}, {"host": "SHOP.example:80"}]}, {"routes": ["duplicate_route"]}),
    ({"bypass_rules": [{"kind": "address", "value": "10.0.0.1/8"}]},
     {"bypass_rules": {"0": {"value": ["invalid_cidr"]}}}),
    ({"bypass_rules": [{"kind": "header", "name": "X-Key"}]}, {"bypass_rules": {"0": {"value": ["invalid_value"]}}}),
    ({"session_idle_seconds": 900, "session_max_seconds": 600}, {"session_max_seconds": ["session_max_below_idle"]}),
    ({"session_idle_seconds": 4000}, {"session_max_seconds": ["session_max_below_idle"]}),  # against the stored max
])
def test_the_api_refuses_with_a_stable_code(staff, make_event, sent, codes):
    event = make_event()
    body = refused(staff.patch(f"/api/events/{event.id}/", sent, format="json"))
    assert body["codes"] == codes
    assert not event.routes.exists() and not event.bypass_rules.exists()


def test_a_route_claimed_between_validation_and_save_is_route_taken(make_event):
    """The database constraint is the last word: a claim that lands after the check is a 400, not a 500."""
    event, other = make_event(), make_event()
    serializer = EventSerializer(event, data={"routes": [{"host": "shop.example"}]}, partial=True)
    assert serializer.is_valid(), serializer.errors
    ProtectedRoute.objects.create(event=other, host="shop.example", path_prefix="/")  # the other request wins
    with pytest.raises(serializers.ValidationError) as refused_save:
        serializer.save()
    assert refused_save.value.get_codes() == {"routes": ["route_taken"]}
    assert not event.routes.exists()
