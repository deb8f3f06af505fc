"""The operator's message to the waiting crowd: set and cleared by the `announce` operation (staff API, admin
console, `qms_queue`), the event's admin page and the events API; delivered over the socket (to fans connected
and to fans connecting later, on both channel layers) and in the HTTP status's `message`."""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from events.crowd_message import MAX_LENGTH
from events.models import Event
from queues.operations import perform
from tests.sockets import open_socket, session_headers


def staff(make_user) -> APIClient:
    client = APIClient()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def fan_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def announce_url(event: Event) -> str:
    return f"/api/events/{event.id}/queue/announce/"


def stored(event: Event) -> tuple[str, dict]:
    event.refresh_from_db()
    return event.crowd_message, event.crowd_message_translations


# --- setting and clearing it: the operation on every front ----------------------------------------------------


@pytest.mark.django_db
def test_the_staff_api_sets_a_trimmed_message_with_its_translation_and_a_blank_text_clears_it(
        store, make_event, make_user):
    event = make_event(paused=True)
    client = staff(make_user)
    body = client.post(announce_url(event), {"text": "  Back at 10:15.  ", "text_de": " Weiter um 10:15. "},
                       format="json").json()
    assert (body["action"], body["announced"]) == ("announce", True)
    assert stored(event) == ("Back at 10:15.", {"de": "Weiter um 10:15."})
    first_stamp = event.crowd_message_updated_at
    assert first_stamp is not None
    cleared = client.post(announce_url(event), {"text": "   ", "text_de": "Nur Deutsch?"}, format="json").json()
    assert cleared["announced"] is False
    assert stored(event) == ("", {})  # a translation alone would reach some fans only: blank clears it all
    assert event.crowd_message_updated_at > first_stamp


@pytest.mark.django_db
def test_a_new_message_without_a_translation_drops_the_old_translation(store, make_event, make_user):
    event = make_event(paused=True)
    perform("announce", event, text="Doors at 8", text_de="Einlass um 8")
    perform("announce", Event.objects.get(pk=event.pk), text="Doors at 9")
    assert stored(event) == ("Doors at 9", {})


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"text": "x" * (MAX_LENGTH + 1)}, "text"),
    ({"text": "ok", "text_de": "x" * (MAX_LENGTH + 1)}, "text_de"),
    ({}, "text"),  # clearing is said out loud (`"text": ""`), never by leaving the text out
    ({"text": None}, "text"),
])
def test_the_staff_api_refuses_a_message_outside_its_bounds(store, make_event, make_user, body, field):
    event = make_event(paused=True)
    refused = staff(make_user).post(announce_url(event), body, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")
    assert list(refused.json()["errors"]) == [field]
    assert stored(event) == ("", {})


@pytest.mark.django_db
def test_a_message_of_exactly_the_maximum_length_is_taken(store, make_event, make_user):
    event = make_event(paused=True)
    text = "x" * MAX_LENGTH
    assert staff(make_user).post(announce_url(event), {"text": text}, format="json").status_code == 200
    assert stored(event) == (text, {})


@pytest.mark.django_db
def test_only_staff_with_the_permission_may_tell_the_crowd(store, make_event, make_user):
    event = make_event(paused=True)
    assert APIClient().post(announce_url(event), {"text": "hi"}, format="json").status_code == 401
    for user in (make_user(), make_user(is_staff=True)):  # a fan; staff without the permission on events
        refused = fan_client(user).post(announce_url(event), {"text": "hi"}, format="json")
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    patched = fan_client(make_user()).patch(f"/api/events/{event.id}/", {"crowd_message": "hi"}, format="json")
    assert (patched.status_code, patched.json()["code"]) == (403, "permission_denied")
    assert stored(event) == ("", {})


@pytest.mark.django_db
def test_the_events_api_sets_and_clears_it_with_the_same_limits(store, make_event, make_user):
    event = make_event(paused=True)
    client = staff(make_user)
    url = f"/api/events/{event.id}/"
    body = client.patch(url, {"crowd_message": " Sold out soon ", "crowd_message_translations": {"de": "Bald weg"}},
                        format="json").json()
    assert (body["crowd_message"], body["crowd_message_translations"]) == ("Sold out soon", {"de": "Bald weg"})
    assert body["crowd_message_updated_at"] is not None
    for refused_body, field in (({"crowd_message": "x" * (MAX_LENGTH + 1)}, "crowd_message"),
                                ({"crowd_message_translations": {"fr": "Bientôt"}}, "crowd_message_translations"),
                                ({"crowd_message_translations": {"de": "x" * (MAX_LENGTH + 1)}},
                                 "crowd_message_translations")):
        refused = client.patch(url, refused_body, format="json")
        assert (refused.status_code, refused.json()["code"], list(refused.json()["errors"])) == (
            400, "invalid", [field])
    assert client.patch(url, {"crowd_message": ""}, format="json").json()["crowd_message_translations"] == {}
    assert stored(event) == ("", {})


@pytest.mark.django_db
def test_the_admin_console_and_the_event_page_set_it(store, make_event, make_user):
    event = make_event(paused=True)
    client = staff(make_user)
    answer = client.post(f"/admin/events/event/{event.id}/queue/announce/",
                         {"text": "Short pause", "text_de": "Kurze Pause"}, follow=True)
    [message] = answer.context["messages"]
    assert message.level_tag == "success" and "every waiting fan now sees your message" in str(message)
    assert stored(event) == ("Short pause", {"de": "Kurze Pause"})
    page = client.get(f"/admin/events/event/{event.id}/change/").content.decode()
    assert 'name="crowd_message_de"' in page and "Kurze Pause</textarea>" in page  # the page shows the current one

    shown = client.get(f"/admin/events/event/{event.id}/change/").context
    form = shown["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update({"crowd_message": "Back soon", "crowd_message_de": ""})
    for inline in shown["inline_admin_formsets"]:  # the event's other lists (routes...), left as they are: empty
        data.update({f"{inline.formset.prefix}-TOTAL_FORMS": 0, f"{inline.formset.prefix}-INITIAL_FORMS": 0})
    saved = client.post(f"/admin/events/event/{event.id}/change/", _as_posted(data))
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    assert stored(event) == ("Back soon", {})


def _as_posted(data: dict) -> dict:
    """Form values as the admin page posts them: a date and a time per date-and-time widget (`<field>_0`,
    `<field>_1`), a ticked box as "on", an unticked one left out."""
    out = {}
    for name, value in data.items():
        if isinstance(value, datetime):
            out[f"{name}_0"], out[f"{name}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
        elif isinstance(value, bool):
            if value:
                out[name] = "on"
        else:
            out[name] = value
    return out


@pytest.mark.django_db
def test_the_admin_console_says_why_a_message_is_refused(store, make_event, make_user):
    event = make_event(paused=True)
    answer = staff(make_user).post(f"/admin/events/event/{event.id}/queue/announce/",
                                   {"text": "x" * (MAX_LENGTH + 1)}, follow=True)
    [message] = answer.context["messages"]
    assert message.level_tag == "error" and str(message).startswith("text:")
    assert stored(event) == ("", {})


@pytest.mark.django_db
def test_qms_queue_announce_sets_and_clears_it(redis_store, make_event):
    event = make_event(paused=True)
    out = StringIO()
    call_command("qms_queue", "announce", str(event.id), "Gates open", "--text-de", "Tore offen", stdout=out)
    assert "every waiting fan now sees your message" in out.getvalue()
    assert stored(event) == ("Gates open", {"de": "Tore offen"})
    call_command("qms_queue", "announce", str(event.id), "", stdout=out)
    assert "cleared" in out.getvalue() and stored(event) == ("", {})
    with pytest.raises(CommandError, match="text: Ensure this field has no more than 500 characters"):
        call_command("qms_queue", "announce", str(event.id), "x" * (MAX_LENGTH + 1), stdout=out)


@pytest.mark.django_db
def test_the_embedded_servers_command_refuses_rather_than_miss_the_sockets(settings, make_event):
    """The embedded default's channel layer is inside the server: a command's broadcast would reach nobody."""
    from queues.store import reset_store_cache

    settings.QMS_STORE = {"BACKEND": "queues.store.memory.MemoryQueueStore"}
    reset_store_cache()
    event = make_event()
    with pytest.raises(CommandError, match="in memory"):
        call_command("qms_queue", "announce", str(event.id), "hello", stdout=StringIO())
    assert stored(event) == ("", {})


# --- the HTTP status of polling clients -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_queue_status_carries_the_message_and_null_once_cleared(store, make_event, make_user):
    event = make_event(paused=True)
    fan = fan_client(make_user())
    assert fan.post(f"/api/events/{event.id}/queue/").json()["message"] is None
    perform("announce", event, text="<b>Doors</b> at 8", text_de="Einlass um 8")
    message = fan.get(f"/api/events/{event.id}/queue/").json()["message"]
    assert (message["text"], message["translations"]) == ("<b>Doors</b> at 8", {"de": "Einlass um 8"})
    assert message["updated_at"].endswith("Z")
    perform("announce", Event.objects.get(pk=event.pk), text="")
    assert fan.get(f"/api/events/{event.id}/queue/").json()["message"] is None


def test_the_status_field_is_in_the_openapi_schema():
    schemas = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["schemas"]
    assert "message" in schemas["QueueStatus"]["properties"]
    assert set(schemas["CrowdMessage"]["properties"]) == {"text", "translations", "updated_at"}
    assert set(schemas["AnnounceRequest"]["properties"]) == {"text", "text_de"}
    assert schemas["AnnounceRequest"]["properties"]["text"]["maxLength"] == MAX_LENGTH


# --- the socket: one broadcast per event, and the current message on connect --------------------------------


async def next_frame_of(comm, kind: str) -> dict:
    """The next frame of this kind; `progress` broadcasts of the running test server may come in between."""
    while True:
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == kind:
            return frame
        assert frame["type"] == "progress", frame


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_fans_connected_see_it_set_and_cleared_and_a_fan_connecting_later_gets_it_first(
        realtime, make_event, make_user):
    event = await database_sync_to_async(make_event)(paused=True)
    first, second, later = [await database_sync_to_async(make_user)() for _ in range(3)]
    sockets = [(await open_socket(event.id, await database_sync_to_async(session_headers)(fan)))[0]
               for fan in (first, second)]

    await database_sync_to_async(perform)("announce", event, text="Back at 10:15", text_de="Weiter um 10:15")
    for comm in sockets:
        frame = await next_frame_of(comm, "announcement")
        assert (frame["event"], frame["message"]["text"], frame["message"]["translations"]) == (
            event.id, "Back at 10:15", {"de": "Weiter um 10:15"})

    newcomer, queued = await open_socket(event.id, await database_sync_to_async(session_headers)(later))
    assert queued["type"] == "queued"
    assert (await newcomer.receive_json_from(timeout=5))["message"]["text"] == "Back at 10:15"

    await database_sync_to_async(perform)("announce", await database_sync_to_async(Event.objects.get)(pk=event.pk),
                                          text="")
    for comm in (*sockets, newcomer):
        assert (await next_frame_of(comm, "announcement"))["message"] is None
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_fan_connecting_with_no_message_set_gets_no_announcement(realtime, make_event, make_user):
    event = await database_sync_to_async(make_event)(paused=True)
    comm, queued = await open_socket(event.id, await database_sync_to_async(session_headers)(
        await database_sync_to_async(make_user)()))
    assert queued["type"] == "queued"
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_saving_other_fields_from_an_older_copy_does_not_take_the_message_back(realtime, make_event, make_user):
    """A pause saved from a copy read before the message (the tick's, an HTTP request's) names its own fields:
    the fans keep the message and hear only the pause."""
    event = await database_sync_to_async(make_event)(paused=True)
    older_copy = await database_sync_to_async(Event.objects.get)(pk=event.pk)
    comm, _ = await open_socket(event.id, await database_sync_to_async(session_headers)(
        await database_sync_to_async(make_user)()))
    await database_sync_to_async(perform)("announce", event, text="Stay with us")
    assert (await next_frame_of(comm, "announcement"))["message"]["text"] == "Stay with us"

    older_copy.paused = False
    await database_sync_to_async(older_copy.save)(update_fields=["paused", "updated_at"])
    # A later broadcast as the marker: the fan-out hands an event's broadcasts to a socket in order.
    await database_sync_to_async(perform)("pause", await database_sync_to_async(Event.objects.get)(pk=event.pk))
    heard = []
    while not heard or heard[-1] != "paused":
        heard.append((await comm.receive_json_from(timeout=5))["type"])
    assert [kind for kind in heard if kind != "progress"] == ["resumed", "paused"]  # no announcement between
    assert (await database_sync_to_async(stored)(event))[0] == "Stay with us"
    await comm.disconnect()
