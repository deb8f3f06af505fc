"""`manage.py qms_queue <operation> <event> [arguments]`: any operator operation of `queues.operations`.

One sub-command per entry of the table (pause, resume, admit N, drain, undrain, reset, announce TEXT), with its
arguments and limits (optional ones as `--options`: `announce 3 "Back at 10:15" --text-de "Weiter um 10:15"`); an
operation that asks first wants `--yes` (or a typed "yes" on a terminal).
"""

from __future__ import annotations

import sys

from django.core.management.base import CommandError
from rest_framework.exceptions import ValidationError

from queues import admission
from queues.operations import OPERATIONS, Operation, problems
from queues.refusals import Refusal

from .qms_status import EventCommand


def add_operation_arguments(parser, operation: Operation) -> None:
    parser.add_argument("event", help="event id or slug")
    for argument in operation.arguments:
        name = argument.name if argument.required else "--" + argument.name.replace("_", "-")
        parser.add_argument(name, type=argument.parse, help=f"{argument.help} ({argument.limits()})")
    if operation.confirm:
        parser.add_argument("--yes", action="store_true", help="confirmed: do not ask")


class OperationCommand(EventCommand):
    """Runs one operation of the table; `qms_pause`, `qms_resume` and `qms_admit` are this bound to one."""

    operation_name = ""

    def add_arguments(self, parser):
        add_operation_arguments(parser, OPERATIONS[self.operation_name])

    def handle(self, *args, **options):
        self.run(OPERATIONS[self.operation_name], options)

    def run(self, operation: Operation, options: dict) -> None:
        data = {argument.name: options[argument.name] for argument in operation.arguments
                if options.get(argument.name) is not None}
        try:
            arguments = operation.clean(data)
        except ValidationError as invalid:
            raise CommandError(problems(invalid)) from None
        self.needs_shared_store = operation.needs_shared_store
        event = self.event(options["event"])
        if operation.confirm and not options.get("yes"):
            self.confirm(operation, event)
        try:
            outcome = operation.perform(event, arguments)
        except Refusal as refused:
            raise CommandError(refused.detail) from None
        self.stdout.write(f"{operation.message(event, arguments, outcome)} (id {event.id})")

    def confirm(self, operation: Operation, event) -> None:
        warning = operation.confirm % {"waiting": admission.stats(event)["waiting"]}
        if not sys.stdin.isatty():
            raise CommandError(f"{warning} Add --yes to confirm.")
        if input(f"{warning}\nType yes to {operation.name} {event.name}: ").strip() != "yes":
            raise CommandError("Not confirmed; nothing changed.")


class Command(OperationCommand):
    help = "Run an operator operation on an event's queue: " + ", ".join(OPERATIONS) + "."

    def add_arguments(self, parser):
        operations = parser.add_subparsers(dest="operation", required=True, metavar="operation")
        for operation in OPERATIONS.values():
            add_operation_arguments(operations.add_parser(operation.name, help=str(operation.summary)), operation)

    def handle(self, *args, operation: str, **options):
        self.run(OPERATIONS[operation], options)
