"""The webhooks in Django's admin: endpoints, and the delivery log with its "redeliver" action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import WebhookDelivery, WebhookEndpoint, WebhookEventType
from .delivery import redeliver


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=WebhookEndpoint._meta.get_field("event_types").verbose_name, choices=WebhookEventType.choices,
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every type."))

    class Meta:
        # No `model`: the admin supplies it, and builds the URL field with its `formfield_overrides` (a model named
        # here would build one at import, without `assume_scheme`: Django 6's deprecation warning).
        fields = ("url", "secret", "description", "active", "event_types", "all_events", "events",
                  "threshold_waiting", "threshold_hysteresis")
        widgets = {"secret": forms.PasswordInput(render_value=True)}


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("url", "description", "active", "all_events", "types", "threshold_waiting",
                    "consecutive_failures", "backoff_until", "created_at")
    list_filter = ("active", "all_events")
    search_fields = ("url", "description")
    filter_horizontal = ("events",)
    readonly_fields = ("consecutive_failures", "backoff_until", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("url", "secret", "description", "active")}),
        (_("What it hears"), {"fields": ("event_types", "all_events", "events")}),
        (_("queue.threshold"), {"fields": ("threshold_waiting", "threshold_hysteresis")}),
        (_("Failing"), {"fields": ("consecutive_failures", "backoff_until")}),
        (_("Record"), {"fields": ("created_by", "created_at", "updated_at")}),
    )

    @admin.display(description=_("event types"))
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or _("all")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: read-only, with "redeliver" for the rows an operator picks."""

    list_display = ("created_at", "event_type", "endpoint", "event", "status", "attempts", "last_status_code",
                    "last_error", "next_attempt_at", "webhook_id")
    list_filter = ("status", "event_type", "endpoint")
    search_fields = ("webhook_id", "endpoint__url")
    list_select_related = ("endpoint", "event")
    actions = ["redeliver_selected"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the log is what happened; "redeliver" is the one thing to do with it

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("queues.change_webhookendpoint")

    @admin.action(description=_("Redeliver (same id: receivers deduplicate)"), permissions=["redeliver"])
    def redeliver_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        rows = list(queryset)
        for delivery in rows:
            redeliver(delivery)
        self.message_user(request, ngettext("%d delivery will be sent again.", "%d deliveries will be sent again.",
                                            len(rows)) % len(rows), messages.SUCCESS)
