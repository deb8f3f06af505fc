"""The fair draw's public page (/events/<id>/draw/): anyone can read it, it carries the event's commitment, the
seed only from the opening, the ten-line verifier exactly as docs/ARCHITECTURE.md has it, and German words."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def verifier_in(page: str) -> str:
    return html.unescape(re.search(r'<code id="draw-verifier">(.*?)</code>', page, re.S).group(1))


def test_the_page_carries_the_verifier_of_the_architecture_doc(client, make_event):
    event = make_event()
    response = client.get(f"/events/{event.id}/draw/")  # nobody logged in
    documented = re.search(r"\*\*Verify \(ten lines\)\.\*\*.*?```python\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    assert response.status_code == 200
    assert verifier_in(response.content.decode()) == documented.group(1).rstrip("\n")
    assert len(documented.group(1).splitlines()) == 10


def test_before_the_opening_the_page_shows_the_commitment_and_not_the_seed(client, make_event):
    event = make_event(sale_starts_at=timezone.now() + timedelta(hours=1))
    page = client.get(f"/events/{event.id}/draw/").content.decode()
    assert f'<code id="draw-commitment">{event.draw_commitment}</code>' in page
    assert event.draw_seed not in page
    assert 'id="draw-seed-hidden"' in page


def test_from_the_opening_the_page_shows_the_seed_and_the_list(client, make_event):
    event = make_event()
    page = client.get(f"/events/{event.id}/draw/").content.decode()
    assert f'<code id="draw-seed">{event.draw_seed}</code>' in page
    assert f'href="/api/events/{event.id}/draw/entries/"' in page


def test_the_page_is_german_for_a_german_browser(client, make_event):
    event = make_event()
    page = client.get(f"/events/{event.id}/draw/", HTTP_ACCEPT_LANGUAGE="de-DE").content.decode()
    assert "So funktioniert die Auslosung" in page
    assert "Was das beweist" in page
    assert "What this proves" not in page


def test_an_unknown_event_has_no_draw_page(client):
    assert client.get("/events/987654/draw/").status_code == 404


def test_the_waiting_room_links_the_page_and_shows_the_commitment_before_the_opening(client, make_event, make_user):
    event = make_event(sale_starts_at=timezone.now() + timedelta(hours=1))
    user = make_user()
    client.force_login(user)
    page = client.get(f"/events/{event.id}/waiting-room/").content.decode()
    assert f'<code id="wr-commitment">{event.draw_commitment}</code>' in page
    assert f'href="/events/{event.id}/draw/"' in page
    assert f'data-user-id="{user.pk}"' in page
    assert event.draw_seed not in page
