"""REST endpoints of the queue: thin adapters over `queues.admission`."""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import Event

from . import admission, draw, entry
from .failure_counts import address_key
from .gate import validated_return_url
from .recent_events import recent_events
from .refusals import DrawNotRevealed, EventNotFound, InvalidReturnUrl, NotInQueue
from .serializers import (
    DrawEntriesSerializer,
    DrawSerializer,
    ErrorSerializer,
    QueueStatsSerializer,
    QueueStatusSerializer,
    ReleaseRequestSerializer,
    ReleaseResponseSerializer,
    VerifyRequestSerializer,
    VerifyResponseSerializer,
)
from .throttles import JoinPerUserThrottle

ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404, 405, 409, 415, 428, 429)}
# Optional body of a join: the solved proof-of-work challenge, when the event asks for one (428 otherwise), and
# what its entry policy asks of a fan without a place (403 otherwise; docs/API.md "Entry policies").
JOIN_REQUEST = inline_serializer("JoinRequest", {
    "pow": inline_serializer("ProofOfWork", {
        "challenge": serializers.CharField(), "solution": serializers.CharField(max_length=64)}, required=False),
    "enqueue_token": serializers.CharField(required=False, help_text="Invite-only events: the invitation's JWT."),
    "access_code": serializers.CharField(required=False, help_text="Access-code events: the fan's code."),
})


RETURN = OpenApiParameter(
    "return", str, description="A URL on one of the event's protected routes (docs/API.md, \"Return URL\"): an "
    "admitted fan's `redirect_url` is this URL with `qms_token=<token>`, for the gate. Any other URL: 400 "
    "`invalid_return_url`.")


def return_url(request, event: Event) -> str | None:
    """`?return=`, validated against the event's own protected routes (no open redirect); None if not sent."""
    url = request.query_params.get("return")
    if not url:
        return None
    valid = validated_return_url(event, url)
    if valid is None:
        raise InvalidReturnUrl()
    return valid


def get_event(event_id: int, *, recent: bool = False) -> Event:
    """The event, read now; `recent=True` (a fan's status poll, join, leave only) accepts this process's copy
    of at most 2 s (queues/recent_events.py): an operator's pause reaches fans within that."""
    event = recent_events.get(event_id) if recent else Event.objects.filter(pk=event_id).first()
    if event is None:
        raise EventNotFound()
    return event


class QueueView(APIView):
    """Join the queue, read your place (or your admission token), leave."""

    def get_throttles(self):
        if self.request.method == "POST":
            return [JoinPerUserThrottle()]
        return []

    @extend_schema(request=JOIN_REQUEST, parameters=[RETURN],
                   responses={200: QueueStatusSerializer, 201: QueueStatusSerializer, **ERRORS})
    def post(self, request, event_id: int):
        pow_body = request.data.get("pow") if isinstance(request.data, dict) else None
        pow_body = pow_body if isinstance(pow_body, dict) else {}
        event = get_event(event_id, recent=True)
        back = return_url(request, event)  # refused before joining: a bad link joins nobody
        if admission.socket_join_needs_service(event):
            # As the socket's join: proof of work, a drain, a pre-queue not open, or a queue that admits on
            # join (a tick) decide on the event as it is, not on a copy that may predate a pause.
            event = get_event(event_id)
        result = admission.enter(event, request.user,
                                 pow_challenge=pow_body.get("challenge"), pow_solution=pow_body.get("solution"),
                                 credentials=entry.Credentials.read(request.data, address_key(request)))
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(QueueStatusSerializer(result, context={"return_url": back}).data, status=code)

    @extend_schema(parameters=[RETURN], responses={200: QueueStatusSerializer, **ERRORS})
    def get(self, request, event_id: int):
        event = get_event(event_id, recent=True)
        back = return_url(request, event)
        result = admission.status(event, request.user)
        if result is None:
            raise NotInQueue()
        return Response(QueueStatusSerializer(result, context={"return_url": back}).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, event_id: int):
        if not admission.leave(get_event(event_id, recent=True), request.user):
            raise NotInQueue()
        return Response(status=status.HTTP_204_NO_CONTENT)


class DrawView(APIView):
    """The pre-queue's draw (docs/ARCHITECTURE.md "The provably fair draw"): the seed's commitment always, the
    seed itself from the opening on. For anyone, logged in or not."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: DrawSerializer, **ERRORS})
    def get(self, request, event_id: int):
        event = get_event(event_id, recent=True)
        body = {**draw.summary(event), "entries_url": reverse("draw-entries", args=[event.id])}
        return Response(DrawSerializer(body).data)


class DrawEntriesView(APIView):
    """The pre-queue's draw in the queue's order at the opening: rank, ticket and key of each fan, no user ids.
    Streamed in one JSON document (a large pre-queue is megabytes), fixed once written: caches may keep it."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: DrawEntriesSerializer, **ERRORS})
    def get(self, request, event_id: int):
        event = get_event(event_id, recent=True)
        if not draw.revealed(event):
            raise DrawNotRevealed()
        if draw.recorded(event) is None:
            raise DrawNotRevealed(DrawNotRevealed.codes["draw_not_recorded"], code="draw_not_recorded")
        response = StreamingHttpResponse(_entries_document(event), content_type="application/json")
        response["Cache-Control"] = "public, max-age=3600"
        return response


def _entries_document(event):
    """`{"entries": [{"rank", "ticket", "key"}, ...]}` written a row at a time."""
    yield '{"entries": ['
    for index, (rank, ticket, key) in enumerate(draw.entries(event)):
        yield ("," if index else "") + json.dumps({"rank": rank, "ticket": ticket, "key": key})
    yield "]}"


class QueueStatsView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: QueueStatsSerializer, **ERRORS})
    def get(self, request, event_id: int):
        return Response(QueueStatsSerializer(admission.stats(get_event(event_id))).data)


class ReservationServiceView(APIView):
    """Called by the reservation service with a fan's admission token: the token is the credential."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []


class VerifyAdmissionView(ReservationServiceView):
    """Verify an admission token against the keys and the ledger; `redeem: true` uses it up (once)."""

    @extend_schema(request=VerifyRequestSerializer, responses={200: VerifyResponseSerializer, **ERRORS})
    def post(self, request):
        body = VerifyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        claims, row = admission.verify(body.validated_data["token"], redeem=body.validated_data["redeem"],
                                       event_id=body.validated_data.get("event"))
        data = {"valid": True, "claims": claims, "redeemed": body.validated_data["redeem"],
                "redeemed_at": row.redeemed_at}
        return Response(VerifyResponseSerializer(data).data)


class ReleaseAdmissionView(ReservationServiceView):
    """The reservation service is done with this fan: free the slot (idempotent)."""

    @extend_schema(request=ReleaseRequestSerializer, responses={200: ReleaseResponseSerializer, **ERRORS})
    def post(self, request):
        body = ReleaseRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row, released = admission.release(body.validated_data["token"])
        data = {"released": True, "already_released": not released, "released_at": row.released_at}
        return Response(ReleaseResponseSerializer(data).data)
