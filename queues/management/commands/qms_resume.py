"""`manage.py qms_resume <event>`: admit again at the configured rate (`qms_queue resume`)."""

from __future__ import annotations

from .qms_queue import OperationCommand


class Command(OperationCommand):
    help = "Resume admission for a paused event."
    operation_name = "resume"
