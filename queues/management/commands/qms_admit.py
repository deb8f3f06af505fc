"""`manage.py qms_admit <event> N`: admit up to N fans now, beyond the rate, within `max_active` (`qms_queue admit`)."""

from __future__ import annotations

from .qms_queue import OperationCommand


class Command(OperationCommand):
    help = "Admit up to N waiting fans at once (they are notified); max_active still holds."
    operation_name = "admit"
