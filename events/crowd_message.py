"""The operator's message to the waiting crowd: its limits, the form it is stored in, and the shape fans get.

Every front that sets it (the `announce` operation of queues/operations.py, the event's admin page, the events
API) holds it to `MAX_LENGTH` and the site's languages; the save itself normalises and stamps it, and the queue
publishes the change (queues/realtime/receivers.py). Plain text: the page shows it as text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

# A notice that fits a phone's banner, not a page. Per text: the plain one and each translation.
MAX_LENGTH = 500


def translated_languages() -> list[str]:
    """The languages a translation may be given for: the site's languages but its default (the plain text's)."""
    return [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def normalised(text: str | None, translations: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """(text, translations) as stored: trimmed, blank translations dropped. A blank text clears the whole
    message, translations too: a translation alone would reach some fans and not the others."""
    text = (text or "").strip()
    if not text:
        return "", {}
    return text, {language: value.strip() for language, value in (translations or {}).items()
                  if isinstance(value, str) and value.strip()}


def public(event) -> dict | None:
    """The message as the socket's `announcement` frame and the HTTP status carry it (docs/API.md), or None.

    Every translation goes out, and the page picks the one of its own language: one frame per event serves
    every fan, whatever their language."""
    if not event.crowd_message:
        return None
    updated = event.crowd_message_updated_at
    return {
        "text": event.crowd_message,
        "translations": dict(event.crowd_message_translations or {}),
        "updated_at": updated.isoformat().replace("+00:00", "Z") if updated else None,
    }
