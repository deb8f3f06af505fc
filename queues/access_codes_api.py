"""Staff API of an event's access codes (entry policy `codes`): upload, counts and list, revoke.

    POST /api/events/<id>/access-codes/                 JSON {"codes": [...]}, or a CSV body (text/csv), or a
                                                         multipart `file`: adds the codes the event lacks
    GET  /api/events/<id>/access-codes/                 {counts, count, next, previous, results} (?limit&offset)
    POST /api/events/<id>/access-codes/<code>/revoke/   the code refuses new joins from now on

Staff holding the permission to change events, as the admin's page (queues/access_code_admin.py). The work
is queues/entry.py's. Included under `/api/` by the project's urls.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import AccessCode
from events.views import BoundedPagination

from . import entry
from .api import ERRORS, get_event
from .refusals import AccessCodeNotFound


class CsvParser(BaseParser):
    """A CSV (or one code per line) request body, as text."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        return stream.read().decode("utf-8-sig")


class PlainTextParser(CsvParser):
    media_type = "text/plain"


class MayChangeEvents(permissions.BasePermission):
    """Staff allowed to change events: the codes are part of an event's configuration."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff and user.has_perm("events.change_event"))


class AccessCodeSerializer(serializers.ModelSerializer):
    used_by = serializers.CharField(source="used_by.username", default=None, read_only=True)

    class Meta:
        model = AccessCode
        fields = ["code", "used_by", "used_at", "revoked_at", "created_at"]


class CodeCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    used = serializers.IntegerField()
    revoked = serializers.IntegerField()
    available = serializers.IntegerField(help_text="Neither used nor revoked.")


UPLOAD_REQUEST = inline_serializer("AccessCodeUpload", {"codes": serializers.ListField(
    child=serializers.CharField(max_length=entry.MAX_CODE_LENGTH), max_length=entry.MAX_UPLOAD_CODES)})
UPLOAD_RESPONSE = inline_serializer("AccessCodeUploadResult", {
    "added": serializers.IntegerField(help_text="Codes new to the event (the others were there already)."),
    "counts": CodeCountsSerializer()})


def uploaded_codes(request) -> list[str]:
    """The codes of an upload, whichever way they came; `invalid` if none or a bad one."""
    data = request.data
    if isinstance(data, str):
        text = data
    elif "file" in request.FILES:
        text = request.FILES["file"].read().decode("utf-8-sig", errors="replace")
    else:
        codes = data.get("codes") if hasattr(data, "get") else None
        if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
            raise ValidationError({"codes": ["Send a list of codes, a CSV body or a CSV `file`."]})
        text = "\n".join(code.replace("\n", " ") for code in codes)
    try:
        codes = entry.parse_codes(text)
    except ValueError as bad:
        raise ValidationError({"codes": [str(bad)]}) from None
    if not codes:
        raise ValidationError({"codes": ["No codes were sent."]})
    return codes


class AccessCodesView(APIView):
    """An event's access codes: how many are used, the list, and uploads."""

    permission_classes = [MayChangeEvents]
    parser_classes = [JSONParser, CsvParser, PlainTextParser, MultiPartParser, FormParser]

    @extend_schema(responses={200: inline_serializer("AccessCodePage", {
        "counts": CodeCountsSerializer(), "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
        "results": AccessCodeSerializer(many=True)}), **ERRORS})
    def get(self, request, event_id: int):
        event = get_event(event_id)
        paginator = BoundedPagination()
        page = paginator.paginate_queryset(
            AccessCode.objects.filter(event=event).select_related("used_by").order_by("id"), request, view=self)
        response = paginator.get_paginated_response(AccessCodeSerializer(page, many=True).data)
        response.data = {"counts": entry.code_counts(event), **response.data}
        return response

    @extend_schema(request=UPLOAD_REQUEST, responses={201: UPLOAD_RESPONSE, **ERRORS})
    def post(self, request, event_id: int):
        event = get_event(event_id)
        added = entry.add_codes(event, uploaded_codes(request))
        return Response({"added": added, "counts": entry.code_counts(event)}, status=status.HTTP_201_CREATED)


class RevokeAccessCodeView(APIView):
    """Revoke one code: it refuses new joins; a fan already holding a place with it keeps the place."""

    permission_classes = [MayChangeEvents]

    @extend_schema(request=None, responses={200: AccessCodeSerializer, **ERRORS})
    def post(self, request, event_id: int, code: str):
        event = get_event(event_id)
        codes = AccessCode.objects.filter(event=event, code=code)
        entry.revoke(codes)
        row = codes.select_related("used_by").first()
        if row is None:
            raise AccessCodeNotFound()
        return Response(AccessCodeSerializer(row).data)


urlpatterns = [
    path("events/<int:event_id>/access-codes/", AccessCodesView.as_view(), name="access-codes"),
    path("events/<int:event_id>/access-codes/<path:code>/revoke/", RevokeAccessCodeView.as_view(),
         name="access-code-revoke"),
]
