"""Staff API of the operator's queue operations: `POST /api/events/<id>/queue/<operation>/`, one route per entry
of `queues.operations.OPERATIONS`, all served by one view.

Each answers with what it did and the queue's numbers afterwards. Included under `/api/` by the project's urls.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import admission
from .api import ERRORS, get_event
from .operations import OPERATIONS, Operation
from .serializers import QueueStatsSerializer


class QueueOperationSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(OPERATIONS))
    event = serializers.IntegerField()
    admitted = serializers.IntegerField(allow_null=True, help_text="admit: how many were admitted.")
    dropped = serializers.IntegerField(allow_null=True, help_text="reset: how many lost their place.")
    announced = serializers.BooleanField(
        allow_null=True, help_text="announce: true if waiting fans now see a message, false if it was cleared.")
    stats = QueueStatsSerializer(help_text="The queue's numbers after the action.")


class MayRunOperation(permissions.BasePermission):
    """The operation's own rule (`Operation.permission`): staff with the permission it names."""

    def has_permission(self, request, view) -> bool:
        return view.operation.allowed(request.user)


class OperationSchema(AutoSchema):
    """The OpenAPI entry of each route, from its table entry."""

    def get_tags(self) -> list[str]:
        return ["operations"]

    def get_description(self) -> str:
        return str(self.view.operation.summary)

    def get_summary(self) -> str:
        return str(self.view.operation.label)

    def get_request_serializer(self):
        return self.view.operation.request_serializer

    def get_response_serializers(self):
        return {200: QueueOperationSerializer, **ERRORS}


class OperationView(APIView):
    operation: Operation | None = None  # set per route by `as_view(operation=...)`
    permission_classes = [MayRunOperation]
    schema = OperationSchema()

    def post(self, request, event_id: int):
        event = get_event(event_id)
        outcome = self.operation.perform(event, request.data, actor=request.user)
        event.refresh_from_db()
        return Response(QueueOperationSerializer({
            "action": self.operation.name, "event": event.id, "admitted": outcome.admitted,
            "dropped": outcome.dropped, "announced": outcome.announced, "stats": admission.stats(event),
        }).data)


urlpatterns = [
    path(f"events/<int:event_id>/queue/{operation.name}/", OperationView.as_view(operation=operation),
         name=f"queue-{operation.name}")
    for operation in OPERATIONS.values()
]
