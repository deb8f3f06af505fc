"""The operator's queue operations, declared once in `OPERATIONS`: pause, resume, admit N now, drain, undrain, reset,
announce (the message to the waiting crowd).

The staff API (`queues.operations_api`), the admin's queue console (`queues.admin`) and the management
command `qms_queue` all read this table: its name, service call, arguments with their limits, who may run
it and whether a person is asked first. Adding an operation is one more entry here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.utils.functional import cached_property
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from rest_framework import serializers

from events import crowd_message
from events.models import Event

from . import admission
from .models import WebhookEventType
from .refusals import Refusal
from .webhooks import outbox

logger = logging.getLogger(__name__)


class OperationBusy(Refusal):
    code, detail, http_status = ("queue_busy", "Another tick held the event's lease for 5 s; try again.", 409)


@dataclass(frozen=True)
class Argument:
    """A whole number an operation takes, with the limits every front enforces."""

    name: str
    label: str
    help: str
    minimum: int
    maximum: int
    default: int
    required: ClassVar[bool] = True
    parse: ClassVar[Callable[[str], int]] = int  # the command line's word to the value
    input_type: ClassVar[str] = "number"  # the console's <input type>

    def field(self) -> serializers.IntegerField:
        return serializers.IntegerField(min_value=self.minimum, max_value=self.maximum, help_text=self.help)

    def limits(self) -> str:
        return f"{self.minimum} to {self.maximum}"


@dataclass(frozen=True)
class TextArgument:
    """Plain text an operation takes, blank allowed (the operation says what blank means), at most `maximum`
    characters; an argument that is not `required` may be left out (the command's `--option`)."""

    name: str
    label: str
    help: str
    maximum: int
    required: bool = True
    minimum: ClassVar[int] = 0
    default: ClassVar[str] = ""
    parse: ClassVar[Callable[[str], str]] = str
    input_type: ClassVar[str] = "text"

    def field(self) -> serializers.CharField:
        return serializers.CharField(max_length=self.maximum, allow_blank=True, required=self.required,
                                     trim_whitespace=True, help_text=self.help)

    def limits(self) -> str:
        return f"at most {self.maximum} characters"


@dataclass(frozen=True)
class Outcome:
    """What an operation did; the API's answer and the operator's message are made from it."""

    admitted: int | None = None  # admit: how many were let in
    dropped: int | None = None  # reset: how many lost their place
    announced: bool | None = None  # announce: True if fans now see a message, False if it was cleared


@dataclass(frozen=True)
class Operation:
    name: str  # the URL segment, the command's sub-command, the admin's action
    label: str  # the button
    summary: str  # the API description, the command's help
    call: Callable[..., Outcome]  # (event, **arguments) -> Outcome
    # The operator's message afterwards, %-formatted with event, the arguments and the outcome (or a function of
    # the outcome giving it, when what happened decides the words).
    done: str | Callable[[Outcome], str]
    arguments: tuple[Argument | TextArgument, ...] = ()
    # The warning a person confirms first (admin page, command prompt), %-formatted with `waiting`. The API's
    # caller has decided already and is not asked.
    confirm: str | None = None
    # The console offers the operation only while this stats flag has this value (pause only when admitting).
    offered_when: tuple[str, bool] | None = None
    # Touches the live queue: a command in another process needs the shared (Redis) store.
    needs_shared_store: bool = False
    # Staff with this Django permission may run it (API and admin); a shell's operator may run anything.
    permission: str = "events.change_event"

    def allowed(self, user) -> bool:
        return bool(user and user.is_active and user.is_staff and user.has_perm(self.permission))

    @cached_property
    def request_serializer(self) -> type[serializers.Serializer] | None:
        """The body the API takes (and its OpenAPI schema); also validates the admin's form and the command."""
        if not self.arguments:
            return None
        fields = {argument.name: argument.field() for argument in self.arguments}
        return type(f"{self.name.title()}Request", (serializers.Serializer,), fields)

    def clean(self, data: Mapping) -> dict[str, int]:
        """The arguments within their limits; raises DRF's ValidationError (`invalid`, field by field)."""
        if self.request_serializer is None:
            return {}
        body = self.request_serializer(data=data)
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)

    def perform(self, event: Event, data: Mapping | None = None, actor=None) -> Outcome:
        """Validate, run and log it with who asked (None: a shell's operator)."""
        arguments = self.clean(data or {})
        outcome = self.call(event, **arguments)
        logger.info("operator action", extra={
            "action": self.name, "event_id": event.id, "actor_id": getattr(actor, "pk", None), **arguments,
            **{key: value for key, value in vars(outcome).items() if value is not None}})
        return outcome

    def message(self, event: Event, arguments: Mapping, outcome: Outcome) -> str:
        done = self.done(outcome) if callable(self.done) else self.done
        return done % {"event": event, **arguments, **vars(outcome)}


def _set_flags(event: Event, **flags: bool) -> Outcome:
    """Pause/resume and drain/undrain are flags on the event; waiting fans hear of a pause by its save signal."""
    for name, value in flags.items():
        setattr(event, name, value)
    with transaction.atomic():  # with its webhook (queue.paused, ...: queues/webhooks/receivers.py)
        event.save(update_fields=[*flags, "updated_at"])
    return Outcome()


def _switch(name: str, label: str, summary: str, done: str, flag: str, value: bool, **options) -> Operation:
    """An operation that sets one of the event's flags, offered while the flag is the other way."""
    return Operation(name, label, summary, functools.partial(_set_flags, **{flag: value}), done,
                     offered_when=(flag, not value), **options)


def _admit(event: Event, count: int) -> Outcome:
    result = admission.tick(event, extra=count, lease_wait=5.0)
    if not result.ran:
        raise OperationBusy()
    return Outcome(admitted=len(result.admitted))


def _reset(event: Event) -> Outcome:
    dropped = admission.reset_queue(event)
    outbox.queue_changed(event, WebhookEventType.QUEUE_RESET, dropped=dropped)
    return Outcome(dropped=dropped)


def _announce(event: Event, text: str, **translated: str) -> Outcome:
    """Set the message to the waiting crowd (a blank text clears it). The save normalises, stamps and publishes
    it to every waiting fan (queues/realtime/receivers.py), as it does for the admin's event page and the API."""
    event.crowd_message = text
    event.crowd_message_translations = {name.removeprefix("text_"): value for name, value in translated.items()}
    event.save(update_fields=["crowd_message", "crowd_message_translations", "crowd_message_updated_at",
                              "updated_at"])
    return Outcome(announced=bool(event.crowd_message))


def _announce_arguments() -> tuple[TextArgument, ...]:
    """`text`, then `text_<language>` for each of the site's other languages (optional: those fans see `text`)."""
    languages = dict(settings.LANGUAGES)
    return (
        TextArgument("text", _("Message to the waiting fans"),
                     _("Plain text every waiting fan sees until cleared; blank clears it."), crowd_message.MAX_LENGTH),
        *(TextArgument(f"text_{code}", format_lazy("{} ({})", _("Message"), languages[code]),
                       format_lazy(_("What fans reading the page in {} see instead (optional)."), languages[code]),
                       crowd_message.MAX_LENGTH, required=False)
          for code in crowd_message.translated_languages()),
    )


MAX_ADMIT_AT_ONCE = 10_000

# What the operator confirms first, %-formatted with how many wait.
DRAIN_WARNING = ngettext_lazy(
    "No new fans can join. The %(waiting)d fan waiting keeps the place and will be admitted. "
    "You can undo this (Take joins again).",
    "No new fans can join. The %(waiting)d fans waiting keep their places and will be admitted. "
    "You can undo this (Take joins again).", "waiting",
)
ANNOUNCED = _("%(event)s: every waiting fan now sees your message.")
CLEARED = _("%(event)s: the message to the waiting fans is cleared.")
RESET_WARNING = ngettext_lazy(
    "%(waiting)d fan waiting will lose their place and be told the queue was reset. "
    "Admissions already issued stay valid. This cannot be undone.",
    "%(waiting)d fans waiting will lose their place and be told the queue was reset. "
    "Admissions already issued stay valid. This cannot be undone.", "waiting",
)

OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    _switch("pause", _("Pause admission"), _("Stop admitting; fans keep their places and keep joining."),
            _("%(event)s: admission paused. Fans keep their places."), "paused", True),
    _switch("resume", _("Resume admission"), _("Admit again at the configured rate."),
            _("%(event)s: admission resumed."), "paused", False),
    Operation(
        "admit", _("Admit"),
        _("Admit up to `count` fans at once, beyond the rate (within `max_active`), even while paused."),
        _admit, _("Admitted %(admitted)d of %(count)d requested now."),
        arguments=(Argument("count", _("Admit now"), _("Admit up to this many now, beyond the rate; "
                                                        "`max_active` still holds."), 1, MAX_ADMIT_AT_ONCE, 10),),
        needs_shared_store=True,
    ),
    _switch(
        "drain", _("Drain (no new joins)"),
        _("Take no new joins (409 `queue_draining`); everyone already waiting is still admitted. "
          "`undrain` takes joins again."),
        _("%(event)s: draining — no new joins, everyone waiting will be admitted."), "draining", True,
        confirm=DRAIN_WARNING,
    ),
    _switch("undrain", _("Take joins again"), _("Undo a drain: new fans may join again (those refused may retry)."),
            _("%(event)s: taking new joins again."), "draining", False),
    Operation("reset", _("Reset queue"), _("Empty the queue: every waiting fan loses the place (socket closed "
                                           "with 4003); admissions stay valid."),
              _reset, _("%(event)s: queue reset, %(dropped)d fans lost their place."), confirm=RESET_WARNING,
              needs_shared_store=True),
    Operation(
        "announce", _("Tell the waiting fans"),
        _("Show every waiting fan a message (plain text, optionally per language) until it is cleared: at once over "
          "their sockets, and in the `message` of the queue status. A blank `text` clears it."),
        _announce, lambda outcome: ANNOUNCED if outcome.announced else CLEARED, arguments=_announce_arguments(),
        # Its broadcast must reach the server's sockets: a command needs the shared channel layer (Redis) as
        # much as the shared store.
        needs_shared_store=True,
    ),
)}


def problems(invalid: serializers.ValidationError) -> str:
    """The refused arguments in one line for a person (`count: Ensure this value is ...`)."""
    return "; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in invalid.detail.items())


def perform(name: str, event: Event, actor=None, **arguments) -> Outcome:
    """Run the operation called `name` (services and tests; the fronts go through `OPERATIONS`)."""
    return OPERATIONS[name].perform(event, arguments, actor)
