"""`/api/events/`: readable by everyone, writable by staff."""

from django.http import Http404
from rest_framework import permissions, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination

from .models import Event
from .serializers import EventSerializer


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_staff)


class BoundedPagination(LimitOffsetPagination):
    """Limit and offset clamped to what the database can take (a fuzzer found 2**63 + 1)."""

    default_limit = 50
    max_limit = 200
    max_offset = 10**9

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)


class EventViewSet(viewsets.ModelViewSet):
    queryset = Event.objects.prefetch_related("routes", "bypass_rules")  # listed with each event
    serializer_class = EventSerializer
    permission_classes = [IsStaffOrReadOnly]
    pagination_class = BoundedPagination
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_object(self) -> Event:
        try:
            return super().get_object()
        except Http404:
            # The code the queue's endpoints use for a missing event (queues.refusals.EventNotFound), spelled
            # here because events/ does not import the queue engine.
            raise NotFound("No such event.", code="event_not_found") from None

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)
