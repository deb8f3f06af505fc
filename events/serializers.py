"""Event serializers: validation of what staff may set (numbers within `events.models.BOUNDS`: the model's
validators, which ModelSerializer applies)."""

from rest_framework import serializers

from .models import Event


class EventSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(required=False, allow_blank=True, max_length=200)

    class Meta:
        model = Event
        fields = [
            "id", "name", "slug", "sale_starts_at", "prequeue_opens_at", "queue_enabled", "queueing_method", "paused",
            "draining", "admit_per_minute", "health_check_url", "pow_difficulty",
            "max_active", "token_ttl_seconds", "reservation_url",
            "session_mode", "session_idle_seconds", "session_max_seconds", "created_by", "created_at", "updated_at",
        ]
        read_only_fields = ["created_by", "created_at", "updated_at"]

    def validate_reservation_url(self, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Use an http or https URL.", code="invalid_scheme")
        return value

    def validate(self, attrs: dict) -> dict:
        opens = attrs.get("prequeue_opens_at", getattr(self.instance, "prequeue_opens_at", None))
        starts = attrs.get("sale_starts_at", getattr(self.instance, "sale_starts_at", None))
        if opens and starts and opens > starts:
            raise serializers.ValidationError({"prequeue_opens_at": "The pre-queue must open before the sale starts."})
        return attrs

    def validate_slug(self, value: str) -> str:
        if value and Event.objects.filter(slug=value).exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise serializers.ValidationError("An event with this slug already exists.", code="unique")
        return value
