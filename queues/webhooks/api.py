"""Staff API of the webhooks: endpoints (CRUD), the delivery log, and "redeliver".

`/api/webhooks/endpoints/`, `/api/webhooks/deliveries/` (filter by `endpoint`, `event`, `status`,
`event_type`), `POST /api/webhooks/deliveries/<id>/redeliver/`. Staff only (`is_staff`).
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from events.views import BoundedPagination

from ..models import WebhookDelivery, WebhookEndpoint, WebhookEventType
from .delivery import redeliver


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventType.choices),
                                        required=False, help_text="Types to send; empty or left out: all.")
    secret = serializers.CharField(write_only=True, min_length=16, max_length=200,
                                   help_text="Signs every delivery; never shown again.")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "secret", "description", "active", "event_types", "all_events", "events",
                  "threshold_waiting", "threshold_hysteresis", "consecutive_failures", "backoff_until", "created_at",
                  "updated_at"]
        read_only_fields = ["consecutive_failures", "backoff_until", "created_at", "updated_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event", "event_type", "webhook_id", "payload", "created_at", "status",
                  "attempts", "next_attempt_at", "retry_until", "last_attempt_at", "last_status_code", "last_error",
                  "delivered_at"]
        read_only_fields = fields


class WebhookEndpointViewSet(viewsets.ModelViewSet):
    queryset = WebhookEndpoint.objects.prefetch_related("events")
    serializer_class = WebhookEndpointSerializer
    permission_classes = [permissions.IsAdminUser]
    pagination_class = BoundedPagination

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookDeliverySerializer
    permission_classes = [permissions.IsAdminUser]
    pagination_class = BoundedPagination
    FILTERS = ("endpoint", "event", "status", "event_type")

    def get_queryset(self):
        rows = WebhookDelivery.objects.all()
        wanted = {name: self.request.query_params[name] for name in self.FILTERS if name in self.request.query_params}
        for name in ("endpoint", "event"):
            if name in wanted and not wanted[name].isdigit():
                raise serializers.ValidationError({name: "A number."})
        return rows.filter(**wanted)

    @extend_schema(request=None, responses={200: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send again now (same id, fresh retry period)."""
        delivery = self.get_object()
        redeliver(delivery)
        return Response(WebhookDeliverySerializer(delivery).data)


router = SimpleRouter()
router.register("endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [path("webhooks/", include(router.urls))]
