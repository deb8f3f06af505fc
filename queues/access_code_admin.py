"""The admin of the access codes of events whose entry policy is `codes`: the list (who used which, filters by
event and state), a "revoke" action, and an upload page for a CSV of codes. The event's page shows the counts
with links here (`access_codes_summary`, used by queues/admin.py). The work is queues/entry.py's, which the
staff API (queues/access_codes_api.py) calls too.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from events.models import AccessCode, EntryPolicy, Event

from . import entry

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 100,000 codes of 50 characters


class CodeStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("available", _("available")), ("used", _("used")), ("revoked", _("revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "available":
            return queryset.filter(used_by__isnull=True, revoked_at__isnull=True)
        if self.value() == "used":
            return queryset.filter(used_by__isnull=False)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class UploadForm(forms.Form):
    event = forms.ModelChoiceField(queryset=Event.objects.all(), label=_("Event"))
    file = forms.FileField(label=_("CSV file"), required=False,
                           help_text=_("One code per line, or the first column of a CSV; a header “code” is skipped."))
    codes = forms.CharField(label=_("Or paste the codes"), required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None and upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is too large: upload the codes in several files."))
        text = upload.read().decode("utf-8-sig", errors="replace") if upload is not None else data.get("codes", "")
        try:
            data["parsed"] = entry.parse_codes(text)
        except ValueError as bad:
            raise forms.ValidationError(str(bad)) from None
        if not data["parsed"]:
            raise forms.ValidationError(_("No codes: choose a file or paste them."))
        return data


@admin.register(AccessCode)
class AccessCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "event", "used_by", "used_at", "revoked_at")
    list_filter = (CodeStateFilter, "event")
    list_select_related = ("event", "used_by")
    search_fields = ("code", "used_by__username")
    fields = ("event", "code", "used_by", "used_at", "revoked_at", "created_at")
    readonly_fields = ("used_by", "used_at", "revoked_at", "created_at")
    actions = ["revoke_codes"]
    change_list_template = "admin/events/accesscode/change_list.html"

    @admin.action(description=_("Revoke the selected codes (they refuse new joins)"), permissions=["change"])
    def revoke_codes(self, request: HttpRequest, queryset) -> None:
        revoked = entry.revoke(queryset)
        self.message_user(request, gettext("%(count)d codes revoked. Fans already holding a place with one keep it.")
                          % {"count": revoked}, messages.WARNING)

    def get_urls(self):
        return [path("upload/", self.admin_site.admin_view(self.upload_view), name="events_accesscode_upload"),
                *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None, initial={"event": request.GET.get("event")})
        if request.method == "POST" and form.is_valid():
            event = form.cleaned_data["event"]
            added = entry.add_codes(event, form.cleaned_data["parsed"])
            counts = entry.code_counts(event)
            self.message_user(request, gettext("%(added)d codes added to %(event)s: %(total)d in all, %(used)d used.")
                              % {"added": added, "event": event, **counts}, messages.SUCCESS)
            if event.entry_policy != EntryPolicy.CODES:
                self.message_user(request, gettext("The event's entry policy is not “access codes”: the codes are "
                                                   "asked for only once it is."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:events_accesscode_changelist") + f"?event__id__exact={event.pk}")
        return TemplateResponse(request, "admin/events/accesscode/upload.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
            "title": _("Upload access codes"),
        })


@admin.display(description=_("access codes"))
def access_codes_summary(event: Event) -> str:
    """"12 used of 100 (1 revoked)" with links to the event's codes and to the upload page."""
    if event.pk is None:
        return "–"
    counts = entry.code_counts(event)
    return format_html(
        '<span id="access-code-counts" data-used="{}" data-total="{}">{}</span> · <a href="{}">{}</a> · '
        '<a href="{}">{}</a>', counts["used"], counts["total"],
        gettext("%(used)d used of %(total)d (%(revoked)d revoked)") % counts,
        reverse("admin:events_accesscode_changelist") + f"?event__id__exact={event.pk}", gettext("list"),
        reverse("admin:events_accesscode_upload") + f"?event={event.pk}", gettext("upload CSV"))
