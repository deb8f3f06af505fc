"""Django admin for events: the event creator's switches."""

from django.contrib import admin

from .models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = (
        "name", "sale_starts_at", "queue_enabled", "paused", "admit_per_minute", "max_active", "created_by",
    )
    list_editable = ("queue_enabled", "paused")
    list_filter = ("queue_enabled", "paused", "sale_starts_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_by", "created_at", "updated_at")
    date_hierarchy = "sale_starts_at"
    fieldsets = (
        (None, {"fields": ("name", "slug", "sale_starts_at", "reservation_url")}),
        ("Queue", {"fields": ("queue_enabled", "paused", "admit_per_minute", "max_active", "token_ttl_seconds")}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
