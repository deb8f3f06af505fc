"""Static files as an arriving fan gets them (qms_project/staticfiles.py): collected, hashed, gzipped, cached for
good by WhiteNoise in the embedded default; straight from static/ while no current collected copy exists."""

from __future__ import annotations

import gzip
import os
import re
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from qms_project.staticfiles import MANIFEST, CollectedStaticFilesStorage, collected_is_current
from tests.e2e.servers import EmbeddedServer, manage

SOURCE = Path(__file__).resolve().parents[1] / "static"


def test_a_collected_copy_is_current_until_a_source_file_changes(tmp_path):
    source, root = tmp_path / "static", tmp_path / "collected"
    (source / "qms").mkdir(parents=True)
    (source / "qms" / "page.js").write_text("one")
    root.mkdir()
    assert not collected_is_current(root, [source])  # never collected
    (root / MANIFEST).write_text("{}")
    assert collected_is_current(root, [source])
    later = (root / MANIFEST).stat().st_mtime + 5
    os.utime(source / "qms" / "page.js", (later, later))  # edited after the collectstatic
    assert not collected_is_current(root, [source])


def test_pages_name_hashed_files_only_while_the_collected_copy_is_current(tmp_path, settings):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "qms_project.staticfiles.CollectedStaticFilesStorage", "OPTIONS": {"location": tmp_path}}}
    call_command("collectstatic", "--noinput", verbosity=0)
    assert (tmp_path / "qms" / "qms.css.gz").is_file()
    current = CollectedStaticFilesStorage(location=tmp_path, current=True)
    stale = CollectedStaticFilesStorage(location=tmp_path, current=False)
    assert re.fullmatch(r"/static/qms/qms\.[0-9a-f]{12}\.css", current.url("qms/qms.css"))
    assert stale.url("qms/qms.css") == "/static/qms/qms.css"


@pytest.mark.e2e
def test_the_embedded_default_serves_collected_files_gzipped_and_cached_for_good(tmp_path):
    static_root = tmp_path / "collected"
    env = {"DJANGO_STATIC_ROOT": str(static_root)}
    server = EmbeddedServer(tmp_path, seed=(), ready_path="/healthz", **env)
    server.stop()  # settings read the collected copy at start: collect, then start again
    manage("collectstatic", "--noinput", "-v0", env=server.env)
    server = EmbeddedServer(tmp_path, seed=(), ready_path="/healthz", **env)
    try:
        with urllib.request.urlopen(f"{server.base}/", timeout=10) as response:
            page = response.read().decode()
        path = re.search(r'href="(/static/qms/qms\.[0-9a-f]{12}\.css)"', page).group(1)
        request = urllib.request.Request(f"{server.base}{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert "immutable" in response.headers["Cache-Control"]
            assert gzip.decompress(response.read()) == (SOURCE / "qms" / "qms.css").read_bytes()
    finally:
        server.stop()
