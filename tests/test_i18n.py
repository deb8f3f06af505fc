"""The fan's language: Accept-Language picks German or English for the pages and the JavaScript catalog."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def fan_client(client, make_user):
    client.force_login(make_user())
    return client


def test_the_waiting_room_renders_in_german_for_a_german_browser(fan_client, make_event):
    event = make_event(name="Konzert")
    response = fan_client.get(f"/events/{event.id}/waiting-room/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    page = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Language"] == "de"
    assert '<html lang="de">' in page
    assert "Ihr Platz in der Warteschlange" in page
    assert "Personen vor Ihnen" in page
    assert "Warteschlange verlassen" in page
    assert "Your place in line" not in page
    assert "/jsi18n/" in page  # the script strings come from the catalog


def test_english_stays_the_default(fan_client, make_event):
    event = make_event()
    for accept in ("en-US,en;q=0.9", "ja-JP", ""):
        page = fan_client.get(f"/events/{event.id}/waiting-room/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()
        assert '<html lang="en">' in page
        assert "Your place in line" in page


def test_the_login_page_is_translated(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Benutzername" in page
    assert "Melden Sie sich an, um der Warteschlange beizutreten" in page


def test_the_javascript_catalog_carries_the_page_strings_in_german(client):
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Jeden Moment" in body  # "Any moment now"
    assert "Ihr Browser wird gepr\\u00fcft" in body or "Ihr Browser wird geprüft" in body
    assert "%(days)s Tage" in body  # plural forms too


def test_every_german_message_is_translated():
    """A string added to a template or the script without a German translation fails here."""
    from django.conf import settings

    for domain in ("django", "djangojs"):
        po = (settings.BASE_DIR / "locale" / "de" / "LC_MESSAGES" / f"{domain}.po").read_text(encoding="utf-8")
        assert po.count("\nmsgid ") > 10
        assert not re.findall(r'^msgstr(?:\[\d\])? ""\n(?!")', po + "\n", re.M), domain  # an empty translation
        assert "#, fuzzy" not in po
