"""The queue console in Django's admin: the Event admin with live queue numbers, a chart and the operator's
operations.

It lives with the queue (events/ knows nothing of queues/). The numbers come from `admission.stats` and
refresh in the page by polling the staff stats endpoint (static/qms/admin-live.js); the buttons, the bulk
actions and their confirmations are made from `queues.operations.OPERATIONS`, the table the staff API and
the commands read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError

from events.models import BypassRule, Event, ProtectedRoute

from . import admission, draw
from .access_code_admin import access_codes_summary
from .login_defence import DefendedAdminLoginForm
from .models import Admission
from .operations import OPERATIONS, Operation, problems
from .refusals import Refusal
from .webhooks import admin as webhooks_admin  # noqa: F401 - registers the endpoints and the delivery log

CHART_MINUTES = 30
CHART_WIDTH, CHART_HEIGHT = 600, 140


def admissions_per_minute(event: Event, minutes: int = CHART_MINUTES, now: datetime | None = None) -> list[dict]:
    """Admissions issued in each of the last `minutes` whole minutes (oldest first), from the ledger."""
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    counts = {
        row["minute"]: row["count"]
        for row in Admission.objects.filter(event=event, issued_at__gte=start)
        .annotate(minute=TruncMinute("issued_at")).values("minute").annotate(count=Count("id"))
    }
    return [{"minute": start + timedelta(minutes=i), "count": counts.get(start + timedelta(minutes=i), 0)}
            for i in range(minutes)]


def admissions_chart(event: Event, now: datetime | None = None) -> dict:
    """Bars of an SVG chart of admissions per minute, laid out here so the template only draws."""
    series = admissions_per_minute(event, now=now)
    peak = max((point["count"] for point in series), default=0)
    top = max(peak, 1)
    left, bottom, plot_height = 36, 20, CHART_HEIGHT - 30
    slot = (CHART_WIDTH - left) / len(series)
    bars = []
    for i, point in enumerate(series):
        height = round(plot_height * point["count"] / top, 1)
        bars.append({
            "x": round(left + i * slot + 1, 1), "width": round(slot - 2, 1),
            "y": round(CHART_HEIGHT - bottom - height, 1), "height": height,
            "count": point["count"], "minute": point["minute"],
        })
    return {
        "bars": bars, "peak": peak, "total": sum(point["count"] for point in series),
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "left": left, "baseline": CHART_HEIGHT - bottom,
        "top_y": CHART_HEIGHT - bottom - plot_height, "first": series[0]["minute"], "last": series[-1]["minute"],
        "minutes": len(series),
    }


def _stats_url(event: Event) -> str:
    return reverse("queue-stats", args=[event.pk])


def _live(obj: Event, stat: str, value) -> str:
    """A cell the admin page's script keeps current from the stats endpoint."""
    return format_html('<span class="qms-live" data-qms-stats-url="{}" data-qms-stat="{}">{}</span>',
                       _stats_url(obj), stat, value)


def _condition(operation: Operation) -> str:
    """`flag:value` for the page's script, which shows the button only while the stats say so."""
    if operation.offered_when is None:
        return ""
    flag, value = operation.offered_when
    return f"{flag}:{str(value).lower()}"


def _bulk_action(operation: Operation):
    """A list action running `operation` on each selected event (after the confirmation, if it asks one)."""

    def run(modeladmin: EventAdmin, request: HttpRequest, queryset):
        if operation.confirm and request.POST.get("confirm") != "yes":
            return modeladmin.confirmation(request, operation, list(queryset))
        for event in queryset:
            modeladmin.perform(request, event, operation, {})
        return None

    run.__name__ = f"{operation.name}_queues"
    return admin.action(description=format_lazy("{} ({})", operation.label, _("selected events")),
                        permissions=["change"])(run)


class ProtectedRouteInline(admin.TabularInline):
    """The hosts and path prefixes the gate guards for this event; a route another event holds is refused by
    `ProtectedRoute.clean`, which names that event."""

    model = ProtectedRoute
    extra = 0
    fields = ("host", "path_prefix")
    verbose_name = _("protected route")
    verbose_name_plural = _("Protected routes (the gate)")


class BypassRuleInline(admin.TabularInline):
    """Traffic the gate lets through without a queue, tried in position order (lowest first)."""

    model = BypassRule
    extra = 0
    fields = ("position", "kind", "name", "value", "note")
    verbose_name = _("bypass rule")
    verbose_name_plural = _("Bypass rules (tried in position order)")


ANNOUNCE = OPERATIONS["announce"]


def form_field(argument_name: str) -> str:
    """The event page's field of an `announce` argument: `text` is `crowd_message`, `text_de` `crowd_message_de`."""
    return "crowd_message" + argument_name.removeprefix("text")


class CrowdMessageForm(forms.ModelForm):
    """The event's page with the message to the waiting crowd as the `announce` operation takes it: one text box
    for everyone and one per other language (not the translations' JSON), with the same limits. Saving the page
    publishes a change to every waiting fan (queues/realtime/receivers.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for code, value in self.instance.crowd_message_translations.items():
            self.initial.setdefault(form_field(f"text_{code}"), value)

    def clean(self) -> dict:
        cleaned = super().clean()
        self.instance.crowd_message_translations = {
            argument.name.removeprefix("text_"): cleaned.get(form_field(argument.name)) or ""
            for argument in ANNOUNCE.arguments if argument.name != "text"}
        return cleaned


def _with_message_fields(form: type[forms.ModelForm]) -> type[forms.ModelForm]:
    """`form` with a text box per `announce` argument (the admin needs its fields declared on the class)."""
    fields = {form_field(argument.name): forms.CharField(
        label=argument.label, help_text=argument.help, required=False, max_length=argument.maximum,
        widget=forms.Textarea(attrs={"rows": 2})) for argument in ANNOUNCE.arguments}
    return type(form.__name__, (form,), fields)


class EventAdmin(admin.ModelAdmin):
    # The live columns first after the name, and few: they must be on screen at 1280 px next to the admin's
    # navigation and filters (the rate and limits are on the event's page).
    list_display = (
        "name", "queue_waiting", "queue_live_admissions", "queue_rate", "queue_eta_last", "sale_starts_at",
        "queue_enabled", "paused", "waiting_room_link",
    )
    list_editable = ("queue_enabled", "paused")
    list_filter = ("queue_enabled", "queueing_method", "paused", "sale_starts_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_by", "created_at", "updated_at", "crowd_message_updated_at", "access_codes",
                       "draw_commitment", "draw_seed_revealed")
    form = _with_message_fields(CrowdMessageForm)
    date_hierarchy = "sale_starts_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # Operations with arguments (admit N) are the console's form, not a list action.
    actions = [_bulk_action(operation) for operation in OPERATIONS.values() if not operation.arguments]
    inlines = [ProtectedRouteInline, BypassRuleInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "prequeue_opens_at", "sale_starts_at", "reservation_url")}),
        ("Queue", {"fields": ("queue_enabled", "queueing_method", "paused", "draining", "admit_per_minute",
                              "max_active", "token_ttl_seconds")}),
        ("Protection", {"fields": ("health_check_url", "pow_difficulty")}),
        ("Entry", {"fields": ("entry_policy", "enqueue_key", "closed_message", "access_codes")}),
        ("Protected site", {"fields": ("session_mode", "session_idle_seconds", "session_max_seconds")}),
        (_("Message to the waiting crowd"), {"fields": (
            *(form_field(argument.name) for argument in ANNOUNCE.arguments),
            "crowd_message_updated_at")}),
        (_("Provably fair draw"), {"fields": ("draw_commitment", "draw_seed_revealed")}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    class Media:
        css = {"all": ("qms/admin-live.css",)}
        # The JavaScript catalog first: the script's words in the admin's language.
        js = (reverse_lazy("javascript-catalog"), "qms/admin-live.js")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # --- live numbers (list columns) ------------------------------------------------

    def _stats(self, obj: Event) -> dict:
        if not hasattr(obj, "_queue_stats"):
            obj._queue_stats = admission.stats(obj)
        return obj._queue_stats

    @admin.display(description=_("waiting"))
    def queue_waiting(self, obj: Event) -> str:
        return _live(obj, "waiting", self._stats(obj)["waiting"])

    @admin.display(description=_("admitted now"))
    def queue_live_admissions(self, obj: Event) -> str:
        return _live(obj, "live_admissions", self._stats(obj)["live_admissions"])

    @admin.display(description=_("rate /min"))
    def queue_rate(self, obj: Event) -> str:
        return _live(obj, "observed_rate_per_minute", self._stats(obj)["observed_rate_per_minute"])

    @admin.display(description=_("ETA last"))
    def queue_eta_last(self, obj: Event) -> str:
        return format_html('<span class="qms-live" data-qms-stats-url="{}" data-qms-stat="eta_last_seconds" '
                           'data-qms-format="duration">{}</span>', _stats_url(obj),
                           self._stats(obj)["eta_last_seconds"])

    @admin.display(description=_("access codes"))
    def access_codes(self, obj: Event) -> str:
        return access_codes_summary(obj)

    @admin.display(description=_("draw commitment"))
    def draw_commitment(self, obj: Event) -> str:
        return obj.draw_commitment if obj.pk else "-"

    @admin.display(description=_("draw seed"))
    def draw_seed_revealed(self, obj: Event) -> str:
        """Shown only from the opening on, like everywhere else (queues/draw.py): not even staff see it before."""
        seed = draw.revealed_seed(obj) if obj.pk else None
        return seed or _("Revealed when the sale opens.")

    @admin.display(description=_("waiting room"))
    def waiting_room_link(self, obj: Event) -> str:
        return format_html('<a href="{}">{}</a>', reverse("waiting-room", args=[obj.pk]), _("open"))

    # --- the live panel on the change page -------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, object_id)
        if event is not None:
            stats = admission.stats(event)
            extra_context = {**(extra_context or {}), "queue_stats": stats, "chart": admissions_chart(event),
                             "stats_url": _stats_url(event), "time_zone": settings.TIME_ZONE,
                             "operations": self._console(request, event, stats)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _console(self, request: HttpRequest, event: Event, stats: Mapping) -> list[dict]:
        """The console's controls, one per operation this operator may run, shown or not by the queue's state."""
        return [{
            "operation": operation, "url": reverse("admin:events_event_queue_action", args=[event.pk, operation.name]),
            "when": _condition(operation),
            "offered": operation.offered_when is None or stats[operation.offered_when[0]] == operation.offered_when[1],
        } for operation in OPERATIONS.values() if operation.allowed(request.user)]

    def get_urls(self):
        urls = [
            path("<int:event_id>/queue/chart/", self.admin_site.admin_view(self.chart_view),
                 name="events_event_queue_chart"),
            path("<int:event_id>/queue/<str:action>/", self.admin_site.admin_view(self.queue_action_view),
                 name="events_event_queue_action"),
        ]
        return urls + super().get_urls()

    def chart_view(self, request: HttpRequest, event_id: int) -> HttpResponse:
        """The chart alone, for the page to refresh it in place."""
        event = get_object_or_404(Event, pk=event_id)
        if not self.has_view_permission(request, event):
            raise PermissionDenied
        return TemplateResponse(request, "admin/events/event/admissions_chart.html", {"chart": admissions_chart(event)})

    def queue_action_view(self, request: HttpRequest, event_id: int, action: str) -> HttpResponse:
        operation = OPERATIONS.get(action)
        if operation is None:
            raise Http404(f"No queue operation {action!r}.")
        event = get_object_or_404(Event, pk=event_id)
        if not operation.allowed(request.user):
            raise PermissionDenied
        if request.method == "GET" and operation.confirm:
            return self.confirmation(request, operation, [event], original=event)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self.perform(request, event, operation, request.POST)
        return HttpResponseRedirect(reverse("admin:events_event_change", args=[event.pk]))

    def confirmation(self, request: HttpRequest, operation: Operation, events: list[Event],
                     original: Event | None = None) -> TemplateResponse:
        """The page asking before an operation that asks first (one event's button, or a list action)."""
        waiting = sum(admission.stats(event)["waiting"] for event in events)
        return TemplateResponse(request, "admin/events/event/operation_confirmation.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": original,
            "events": events, "operation": operation, "title": format_lazy("{}?", operation.label),
            "warning": operation.confirm % {"waiting": waiting}, "action_name": f"{operation.name}_queues",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    def perform(self, request: HttpRequest, event: Event, operation: Operation, data: Mapping) -> None:
        """Run it and tell the operator what happened, or why not."""
        if not operation.allowed(request.user):
            self.message_user(request, _("You may not do this."), messages.ERROR)
            return
        try:
            arguments = operation.clean(data)
            outcome = operation.perform(event, arguments, actor=request.user)
        except ValidationError as invalid:
            self.message_user(request, problems(invalid), messages.ERROR)
            return
        except Refusal as refused:
            self.message_user(request, refused.detail, messages.ERROR)
            return
        # Operations that ask first are the ones to remember: shown as warnings.
        level = messages.WARNING if operation.confirm else messages.SUCCESS
        self.message_user(request, operation.message(event, arguments, outcome), level)


admin.site.register(Event, EventAdmin)
admin.site.login_form = DefendedAdminLoginForm  # the admin's login counts failures as every login does
