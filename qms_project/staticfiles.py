"""Static files as an arriving fan gets them: content-hashed names, gzip copies and far-future caching.

`collectstatic` (`make run` and `make run-prod` run it) writes each file under a content-hashed name with a
gzip copy and a manifest; WhiteNoise (embedded default) or nginx (production, docs/DEPLOYMENT.md) then serves
the compressed copy with `Cache-Control: max-age=315360000, immutable`, so a fan's browser fetches each file
once per version. Until a collected copy is current (newer than every file under static/), pages name the
files as they are and WhiteNoise serves them from the source directories: a checkout with no collectstatic,
or a stale one, still serves the files being edited.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from whitenoise.storage import CompressedManifestStaticFilesStorage

MANIFEST = "staticfiles.json"


def collected_is_current(root: Path, sources: Iterable[Path]) -> bool:
    """A manifest in `root` written after the last change to any file under `sources`."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        return False
    built = manifest.stat().st_mtime
    return all(path.stat().st_mtime <= built for source in sources for path in Path(source).rglob("*")
               if path.is_file())


class CollectedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage, naming hashed files only while the collected copy is current."""

    manifest_name = MANIFEST

    def __init__(self, *args, current: bool = False, **kwargs):
        self.current = current
        super().__init__(*args, **kwargs)

    def stored_name(self, name: str) -> str:
        return super().stored_name(name) if self.current else name
