"""`manage.py qms_rotate_key`: sign with a new key; the old one stays in the JWKS until its tokens expire.

Works on `QMS_SIGNING_KEY_DIR` (see `queues.tokens.KeyDirectory`): every
process re-reads the directory within a second, so no restart is needed.
"""

from __future__ import annotations

import fcntl
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone

from events.models import Event
from queues import tokens
from queues.models import Admission

# Clock skew between hosts, and verifiers' leeway: a retired key is kept this much longer.
RETIREMENT_MARGIN_SECONDS = 60


def retired_key_lifetime() -> float:
    """Seconds the retired key must stay listed: the longest a token signed with it may still be valid.

    That is the latest expiry already in the ledger, or a token signed just now (by a process that has
    not seen the rotation yet) with the longest TTL of any event, whichever is later.
    """
    now = timezone.now()
    latest = Admission.objects.aggregate(latest=Max("expires_at"))["latest"]
    issued_ttl = max(0.0, (latest - now).total_seconds()) if latest else 0.0
    longest_ttl = Event.objects.aggregate(longest=Max("token_ttl_seconds"))["longest"] or 0
    return max(issued_ttl, longest_ttl + tokens.KEY_DIRECTORY_CHECK_SECONDS) + RETIREMENT_MARGIN_SECONDS


class Command(BaseCommand):
    help = "Rotate the token signing key in QMS_SIGNING_KEY_DIR; the old key verifies until its tokens expire."

    def add_arguments(self, parser):
        parser.add_argument("--keep-seconds", type=float, default=None,
                            help="list the retired key this long (default: until its last token expires)")

    def handle(self, *args, keep_seconds: float | None, **options):
        directory = tokens.key_directory()
        if directory is None:
            raise CommandError(
                "QMS_SIGNING_KEY_DIR is not set. With QMS_SIGNING_KEY(_FILE), rotate by hand: move the old "
                "public key to QMS_EXTRA_VERIFICATION_KEYS, set the new private key, restart every process.")
        directory.path.mkdir(parents=True, exist_ok=True)
        keep = retired_key_lifetime() if keep_seconds is None else keep_seconds
        verify_until = time.time() + keep
        with open(directory.path / ".rotation.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two operators rotating at once would lose a key
            retired_kid, signing_kid = directory.rotate(verify_until)
        tokens.reset_keyring()
        next_kid = [key["kid"] for key in tokens.jwks()["keys"]][1]
        until = datetime.fromtimestamp(verify_until, UTC).isoformat(timespec="seconds")
        self.stdout.write(f"retired {retired_kid} (in the JWKS until {until})")
        self.stdout.write(f"signing {signing_kid}")
        self.stdout.write(f"next    {next_kid} (published now, signs after the next rotation)")
        self.stdout.write("every process picks this up within "
                          f"{tokens.KEY_DIRECTORY_CHECK_SECONDS:g} s; nothing to restart")
        if settings.QMS_EXTRA_VERIFICATION_KEYS:
            self.stdout.write("QMS_EXTRA_VERIFICATION_KEYS is still listed too; remove it once its tokens expired.")
