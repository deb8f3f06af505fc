"""`/api/events/`: readable by everyone, writable by staff."""

from rest_framework import permissions, viewsets
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
    queryset = Event.objects.all()
    serializer_class = EventSerializer
    permission_classes = [IsStaffOrReadOnly]
    pagination_class = BoundedPagination
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)
