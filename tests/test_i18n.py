"""The fan's language: Accept-Language picks German or English for the pages and the JavaScript catalog."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

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


def test_the_events_page_is_translated(client, make_event):
    make_event(name="Tour", entry_policy="reject")
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Im Verkauf" in page and "Geschlossen" in page and "Zum Warteraum" in page


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


GETTEXT_TOOLS = ("msgfmt", "msgattrib")


@pytest.fixture(scope="module")
def gettext_tools() -> None:
    """`make test` installs GNU gettext (the `gettext` target); a run without it cannot check the catalogs."""
    from .services import require_service

    missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    if missing:
        require_service("GNU gettext", FileNotFoundError(", ".join(missing)))


def project_copy(destination: Path) -> Path:
    """The project's own code, templates, scripts and catalogs (no virtualenv, no tests) in `destination`."""
    from django.apps import apps
    from django.conf import settings

    base = Path(settings.BASE_DIR)
    parts = {base / "manage.py", Path(settings.LOCALE_PATHS[0]), *map(Path, settings.STATICFILES_DIRS),
             *(Path(directory) for template in settings.TEMPLATES for directory in template["DIRS"]),
             base / settings.ROOT_URLCONF.split(".")[0],  # the project package: settings, urls
             *(Path(app.path) for app in apps.get_app_configs() if Path(app.path).is_relative_to(base))}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in parts:
        target = destination / part.relative_to(base)
        if part.is_dir():
            shutil.copytree(part, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(part, target)
    return destination


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    from .e2e.servers import base_env

    env = base_env(DATABASE_URL=f"sqlite:///{cwd / 'check.sqlite3'}")
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_in_the_code_templates_and_scripts_is_in_the_german_catalog(domain, tmp_path, gettext_tools):
    """`makemessages` over a copy of the project adds nothing: every translatable string is in the .po, translated.

    A `{% translate %}` in a template, a `gettext()` in static/qms/*.js or Python that nobody ran
    `make messages` for would show up here as an untranslated (or fuzzy-matched) entry.
    """
    import sys

    copy = project_copy(tmp_path / "project")
    run(sys.executable, "manage.py", "makemessages", "--locale", "de", "--domain", domain, cwd=copy)
    po = copy / "locale" / "de" / "LC_MESSAGES" / f"{domain}.po"
    missing = [entry for flag in ("--untranslated", "--only-fuzzy")
               for entry in run("msgattrib", flag, "--no-obsolete", str(po), cwd=copy).stdout.split("\n\n")
               if entry.strip() and 'msgid ""\nmsgstr ""' not in entry]  # the header is no message
    assert not missing, f"not translated in the German {domain}.po:\n" + "\n\n".join(missing)


def catalog(mo: Path) -> dict:
    with mo.open("rb") as handle:
        return dict(gettext.GNUTranslations(handle)._catalog)  # msgid (or (msgid, n)) -> msgstr


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalog_is_the_current_po(domain, tmp_path, gettext_tools):
    """The committed .mo (what Django reads) says what the committed .po says: nobody forgot compilemessages."""
    from django.conf import settings

    messages = Path(settings.LOCALE_PATHS[0]) / "de" / "LC_MESSAGES"
    fresh = tmp_path / f"{domain}.mo"
    run("msgfmt", "--check-format", "-o", str(fresh), str(messages / f"{domain}.po"), cwd=tmp_path)
    committed, current = catalog(messages / f"{domain}.mo"), catalog(fresh)
    stale = {key: (committed.get(key), current.get(key)) for key in committed.keys() | current.keys()
             if committed.get(key) != current.get(key) and key != ""}
    assert not stale, f"{domain}.mo is not compiled from {domain}.po (committed, current): {stale}"
    assert len(current) > 10
