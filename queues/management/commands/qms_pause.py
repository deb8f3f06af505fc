"""`manage.py qms_pause <event>`: stop admitting; fans keep their places and are told (`qms_queue pause`)."""

from __future__ import annotations

from .qms_queue import OperationCommand


class Command(OperationCommand):
    help = "Pause admission for an event (joins still queue)."
    operation_name = "pause"
