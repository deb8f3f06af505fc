"""Staff API for the event creator's queue actions: pause, resume, admit N now, drain, reset.

Thin views over the operator functions of `queues.admission`; each answers with
what it did and the queue's numbers afterwards.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from . import admission
from .api import ERRORS, get_event
from .serializers import QueueStatsSerializer

MAX_ADMIT_AT_ONCE = 10_000


class AdmitNowRequestSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=MAX_ADMIT_AT_ONCE,
                                     help_text="Admit up to this many now, beyond the rate; `max_active` still holds.")


class QueueOperationSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["pause", "resume", "admit", "drain", "reset"])
    event = serializers.IntegerField()
    admitted = serializers.IntegerField(allow_null=True, help_text="admit: how many were admitted.")
    dropped = serializers.IntegerField(allow_null=True, help_text="reset: how many lost their place.")
    stats = QueueStatsSerializer(help_text="The queue's numbers after the action.")


def _answer(action: str, event, *, admitted: int | None = None, dropped: int | None = None) -> Response:
    event.refresh_from_db()
    return Response(QueueOperationSerializer({
        "action": action, "event": event.id, "admitted": admitted, "dropped": dropped,
        "stats": admission.stats(event),
    }).data)


class OperatorView(APIView):
    permission_classes = [permissions.IsAdminUser]


class PauseQueueView(OperatorView):
    """Stop admitting; fans keep their places and keep joining."""

    @extend_schema(request=None, responses={200: QueueOperationSerializer, **ERRORS}, tags=["operations"])
    def post(self, request, event_id: int):
        event = admission.set_paused(get_event(event_id), True, request.user)
        return _answer("pause", event)


class ResumeQueueView(OperatorView):
    """Admit again at the configured rate."""

    @extend_schema(request=None, responses={200: QueueOperationSerializer, **ERRORS}, tags=["operations"])
    def post(self, request, event_id: int):
        event = admission.set_paused(get_event(event_id), False, request.user)
        return _answer("resume", event)


class AdmitNowView(OperatorView):
    """Admit up to `count` fans at once, beyond the rate (within `max_active`), even while paused."""

    @extend_schema(request=AdmitNowRequestSerializer, responses={200: QueueOperationSerializer, **ERRORS},
                   tags=["operations"])
    def post(self, request, event_id: int):
        event = get_event(event_id)
        body = AdmitNowRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = admission.admit_now(event, body.validated_data["count"], request.user)
        return _answer("admit", event, admitted=len(result.admitted))


class DrainQueueView(OperatorView):
    """Take no new joins (409 `queue_draining`); everyone already waiting is still admitted."""

    @extend_schema(request=None, responses={200: QueueOperationSerializer, **ERRORS}, tags=["operations"])
    def post(self, request, event_id: int):
        event = admission.drain(get_event(event_id), request.user)
        return _answer("drain", event)


class ResetQueueView(OperatorView):
    """Empty the queue: every waiting fan loses the place (socket closed with 4003); admissions stay valid."""

    @extend_schema(request=None, responses={200: QueueOperationSerializer, **ERRORS}, tags=["operations"])
    def post(self, request, event_id: int):
        event = get_event(event_id)
        dropped = admission.reset_queue(event, request.user)
        return _answer("reset", event, dropped=dropped)
