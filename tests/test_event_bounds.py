"""Every number an operator sets on an event stays within `events.models.BOUNDS`: the API and the admin form
refuse the rest with `invalid`, the database refuses it too, and every value within them keeps a queue running
(issue 13, defect 1: a TTL of 999999999999999 stopped every join, socket and tick with OverflowError)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from events.models import BOUNDS, Event
from queues import admission
from tests.admin_forms import admin_form_data

pytestmark = pytest.mark.django_db

OUT_OF_BOUNDS = [
    ("token_ttl_seconds", 999_999_999_999_999),
    ("token_ttl_seconds", BOUNDS["token_ttl_seconds"][1] + 1),
    ("token_ttl_seconds", BOUNDS["token_ttl_seconds"][0] - 1),
    ("admit_per_minute", 2_147_483_648),
    ("admit_per_minute", BOUNDS["admit_per_minute"][1] + 1),
    ("admit_per_minute", 0),
    ("max_active", BOUNDS["max_active"][1] + 1),
    ("max_active", 0),
    ("pow_difficulty", BOUNDS["pow_difficulty"][1] + 1),
    ("pow_difficulty", -1),
]


@pytest.fixture
def staff(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(is_staff=True))
    return client


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_the_api_refuses_a_number_out_of_bounds(staff, make_event, field, value):
    event = make_event()
    before = getattr(event, field)
    response = staff.patch(f"/api/events/{event.id}/", {field: value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["detail"] and field in body["errors"]
    event.refresh_from_db()
    assert getattr(event, field) == before


def test_the_api_accepts_every_bound_itself(staff, make_event):
    event = make_event()
    for end in (0, 1):
        values = {field: bounds[end] for field, bounds in BOUNDS.items()}
        response = staff.patch(f"/api/events/{event.id}/", values, format="json")
        assert response.status_code == 200, response.json()
        event.refresh_from_db()
        assert {field: getattr(event, field) for field in BOUNDS} == values


@pytest.fixture
def admin_client_and_event(client, make_user, make_event):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    event = make_event()
    url = f"/admin/events/event/{event.id}/change/"
    page = client.get(url)
    assert page.status_code == 200
    return client, event, url, admin_form_data(page)


def test_the_admin_form_saves_the_event_as_rendered(admin_client_and_event):
    """The control for the refusal below: the form data built here is a valid save."""
    client, event, url, data = admin_client_and_event
    saved = client.post(url, {**data, "token_ttl_seconds": "900"})
    assert saved.status_code == 302
    event.refresh_from_db()
    assert event.token_ttl_seconds == 900


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_the_admin_form_refuses_a_number_out_of_bounds(admin_client_and_event, field, value):
    client, event, url, data = admin_client_and_event
    before = getattr(event, field)
    response = client.post(url, {**data, field: str(value)})
    assert response.status_code == 200  # the form again, with the error
    assert field in response.context["adminform"].form.errors
    event.refresh_from_db()
    assert getattr(event, field) == before


@pytest.mark.parametrize(("field", "value"), [(field, high + 1) for field, (_low, high) in BOUNDS.items()]
                         + [(field, low - 1) for field, (low, _high) in BOUNDS.items() if low > 0])
def test_the_database_refuses_a_number_out_of_bounds(make_event, field, value):
    """A write past the validators (a queryset update) is refused as well: no stored value stops a queue."""
    event = make_event()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(**{field: value})


@pytest.mark.parametrize("end", [0, 1], ids=["lower_bounds", "upper_bounds"])
def test_a_queue_runs_at_every_bound(store, make_event, make_user, end):
    """Join, tick, admit and read the status with every number at its bound: nothing overflows."""
    values = {field: bounds[end] for field, bounds in BOUNDS.items()}
    event = make_event(**values)
    Event.objects.filter(pk=event.pk).update(paused=True)
    event.refresh_from_db()
    fans = [make_user() for _ in range(3)]
    for fan in fans:
        assert admission.join(event, fan).state == "waiting"
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    result = admission.tick(event, publish=False)
    assert result.ran and result.admitted
    first = admission.status(event, fans[0])
    assert first.state == "admitted"
    row = first.admission
    assert (row.expires_at - row.issued_at).total_seconds() == pytest.approx(values["token_ttl_seconds"], abs=1)
    assert admission.stats(event)["configured_rate_per_minute"] == values["admit_per_minute"]


def test_docs_api_lists_the_bounds():
    text = (Path(__file__).resolve().parent.parent / "docs" / "API.md").read_text()
    for field, (low, high) in BOUNDS.items():
        row = re.search(rf"^\| `{field}` \| (\d[\d,]*)[^|]*\| (\d[\d,]*)[^|]*\|", text, re.MULTILINE)
        assert row, field
        assert (int(row[1].replace(",", "")), int(row[2].replace(",", ""))) == (low, high)
