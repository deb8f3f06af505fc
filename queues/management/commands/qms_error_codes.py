"""`manage.py qms_error_codes`: every `code` an `/api/` error body may carry, as the Markdown table of
docs/API.md (`--list`: the comma-separated list of README.md). The docs are pasted from this output and
tests/test_errors.py holds them to it."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from queues.errors import error_codes, error_codes_markdown


class Command(BaseCommand):
    help = "Print every API error code with its HTTP status and meaning (docs/API.md's table)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--list", action="store_true", help="only the codes, comma-separated (README.md)")

    def handle(self, *args, list: bool = False, **options) -> None:
        if list:
            self.stdout.write(codes_sentence())
        else:
            self.stdout.write(error_codes_markdown(), ending="")


def codes_sentence() -> str:
    return ", ".join(f"`{code}`" for code in error_codes()) + "."
