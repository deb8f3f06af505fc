"""Django admin for events: the event creator's switches, live queue numbers and queue actions.

The numbers come from `queues.admission.stats` and refresh in the page by polling
the staff stats endpoint; the actions call the operator functions of
`queues.admission` (the same ones the staff API calls).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from queues import admission
from queues.models import Admission

from .models import Event

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


def _live(obj: Event, stat: str, value) -> str:
    """A cell the admin page's script keeps current from the stats endpoint."""
    return format_html('<span class="qms-live" data-qms-stats-url="/api/events/{}/queue/stats/" '
                       'data-qms-stat="{}">{}</span>', obj.pk, stat, value)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = (
        "name", "sale_starts_at", "queue_enabled", "paused", "admit_per_minute", "max_active",
        "queue_waiting", "queue_live_admissions", "queue_admitted_last_minute", "queue_rate", "queue_eta_last",
        "waiting_room_link",
    )
    list_editable = ("queue_enabled", "paused")
    list_filter = ("queue_enabled", "queueing_method", "paused", "sale_starts_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_by", "created_at", "updated_at")
    date_hierarchy = "sale_starts_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ("pause_queues", "resume_queues", "drain_queues", "reset_queues")
    fieldsets = (
        (None, {"fields": ("name", "slug", "prequeue_opens_at", "sale_starts_at", "reservation_url")}),
        ("Queue", {"fields": ("queue_enabled", "queueing_method", "paused", "draining", "admit_per_minute",
                              "max_active", "token_ttl_seconds")}),
        ("Protection", {"fields": ("health_check_url", "pow_difficulty")}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    class Media:
        css = {"all": ("qms/admin-live.css",)}
        js = ("qms/admin-live.js",)

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # --- live numbers (list columns) ------------------------------------------------

    def _stats(self, obj: Event) -> dict:
        if not hasattr(obj, "_queue_stats"):
            obj._queue_stats = admission.stats(obj)
        return obj._queue_stats

    @admin.display(description="waiting")
    def queue_waiting(self, obj: Event) -> str:
        return _live(obj, "waiting", self._stats(obj)["waiting"])

    @admin.display(description="live admissions")
    def queue_live_admissions(self, obj: Event) -> str:
        return _live(obj, "live_admissions", self._stats(obj)["live_admissions"])

    @admin.display(description="admitted last min")
    def queue_admitted_last_minute(self, obj: Event) -> str:
        return _live(obj, "admitted_last_minute", self._stats(obj)["admitted_last_minute"])

    @admin.display(description="rate /min")
    def queue_rate(self, obj: Event) -> str:
        return _live(obj, "observed_rate_per_minute", self._stats(obj)["observed_rate_per_minute"])

    @admin.display(description="ETA last in line")
    def queue_eta_last(self, obj: Event) -> str:
        return _live(obj, "eta_last_seconds", self._stats(obj)["eta_last_seconds"])

    @admin.display(description="waiting room")
    def waiting_room_link(self, obj: Event) -> str:
        return format_html('<a href="{}">open</a>', reverse("waiting-room", args=[obj.pk]))

    # --- the live panel on the change page -------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        event = self.get_object(request, object_id)
        if event is not None:
            extra_context = {**(extra_context or {}), "queue_stats": admission.stats(event),
                             "chart": admissions_chart(event), "stats_url": f"/api/events/{event.pk}/queue/stats/"}
        return super().change_view(request, object_id, form_url, extra_context)

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
        event = self._event_for(request, event_id, change=False)
        return TemplateResponse(request, "admin/events/event/admissions_chart.html", {"chart": admissions_chart(event)})

    def queue_action_view(self, request: HttpRequest, event_id: int, action: str) -> HttpResponse:
        event = self._event_for(request, event_id, change=True)
        back = HttpResponseRedirect(reverse("admin:events_event_change", args=[event.pk]))
        if action not in {"pause", "resume", "admit", "drain", "reset"}:
            raise PermissionDenied
        if action == "reset" and request.method == "GET":
            return TemplateResponse(request, "admin/events/event/reset_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "original": event,
                "title": "Reset the queue?", "waiting": admission.stats(event)["waiting"],
            })
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action == "admit":
            try:
                count = int(request.POST.get("count", "1"))
            except ValueError:
                count = 0
            if not 1 <= count <= 10_000:
                self.message_user(request, "Admit between 1 and 10000 fans.", messages.ERROR)
                return back
            result = admission.admit_now(event, count, request.user)
            self.message_user(request, f"Admitted {len(result.admitted)} of {count} requested now.")
        else:
            self._run(request, event, action)
        return back

    def _event_for(self, request: HttpRequest, event_id: int, *, change: bool) -> Event:
        event = get_object_or_404(Event, pk=event_id)
        allowed = self.has_change_permission(request, event) if change else self.has_view_permission(request, event)
        if not allowed:
            raise PermissionDenied
        return event

    def _run(self, request: HttpRequest, event: Event, action: str) -> None:
        if action == "pause":
            admission.set_paused(event, True, request.user)
            self.message_user(request, f"{event}: admission paused. Fans keep their places.")
        elif action == "resume":
            admission.set_paused(event, False, request.user)
            self.message_user(request, f"{event}: admission resumed.")
        elif action == "drain":
            admission.drain(event, request.user)
            self.message_user(request, f"{event}: draining — no new joins, everyone waiting will be admitted.")
        elif action == "reset":
            dropped = admission.reset_queue(event, request.user)
            self.message_user(request, f"{event}: queue reset, {dropped} fans lost their place.", messages.WARNING)

    # --- bulk actions on the list ---------------------------------------------------

    @admin.action(description="Pause admission of the selected events", permissions=["change"])
    def pause_queues(self, request, queryset):
        for event in queryset:
            self._run(request, event, "pause")

    @admin.action(description="Resume admission of the selected events", permissions=["change"])
    def resume_queues(self, request, queryset):
        for event in queryset:
            self._run(request, event, "resume")

    @admin.action(description="Drain the selected queues (no new joins, admit the rest)", permissions=["change"])
    def drain_queues(self, request, queryset):
        for event in queryset:
            self._run(request, event, "drain")

    @admin.action(description="Reset the selected queues (everyone waiting loses the place)", permissions=["change"])
    def reset_queues(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/events/event/reset_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "events": list(queryset),
                "title": "Reset the selected queues?", "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "waiting": sum(admission.stats(event)["waiting"] for event in queryset),
            })
        for event in queryset:
            self._run(request, event, "reset")
