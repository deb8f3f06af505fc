"""Event serializers: validation of what staff may set (numbers within `events.models.BOUNDS`: the model's
validators, which ModelSerializer applies; routes and bypass rules: the models' clean(), as the admin runs it)."""

from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import get_error_detail

from .crowd_message import MAX_LENGTH as MESSAGE_MAX_LENGTH
from .crowd_message import translated_languages
from .enqueue_keys import UnusableKey, verification_key
from .models import BypassRule, EntryPolicy, Event, ProtectedRoute, check_session_limits

MAX_LIST = 100  # routes or bypass rules of one event: far more than a sale needs, few enough to check row by row


def _refuse_unless_clean(check, *args) -> None:
    """Run a model-side check (the admin's) and answer its refusal as the API's, keeping each error's code."""
    try:
        check(*args)
    except DjangoValidationError as invalid:
        raise serializers.ValidationError(get_error_detail(invalid)) from None


@contextmanager
def _routes_saved():
    """One transaction for the event and its lists; a route another request claimed since validation (the
    database constraint is the last word) is answered as `route_taken`, not a server error."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        if "one_event_per_route" not in str(error):
            raise
        raise serializers.ValidationError({"routes": [ErrorDetail(
            "Another event claimed one of these routes meanwhile.", code="route_taken")]}) from None


def _event_id(serializer: serializers.Serializer) -> int | None:
    """The event being updated (None while one is created): its own routes do not count as taken."""
    return getattr(serializer.root.instance, "pk", None)


class ProtectedRouteSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProtectedRoute
        fields = ["id", "host", "path_prefix"]
        read_only_fields = ["id"]
        # The one-event-per-route check is ProtectedRoute.clean's, which names the event holding the route and
        # ignores the routes this request replaces; the database constraint stays the last word.
        validators: list = []

    def validate(self, attrs: dict) -> dict:
        route = ProtectedRoute(event_id=_event_id(self), **attrs)
        _refuse_unless_clean(route.clean)
        return {"host": route.host, "path_prefix": route.path_prefix}


class BypassRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = BypassRule
        fields = ["id", "position", "kind", "name", "value", "note"]
        read_only_fields = ["id", "position"]  # the position is the rule's place in the list sent

    def validate(self, attrs: dict) -> dict:
        rule = BypassRule(**attrs)
        _refuse_unless_clean(rule.clean)
        return {**attrs, "name": rule.name, "value": rule.value}


class EventSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(required=False, allow_blank=True, max_length=200)
    routes = ProtectedRouteSerializer(
        many=True, required=False, max_length=MAX_LIST,
        help_text="The hosts and path prefixes the gate guards for this event. Sent, it replaces them all.")
    bypass_rules = BypassRuleSerializer(
        many=True, required=False, max_length=MAX_LIST,
        help_text="Traffic the gate lets through without a queue, tried in list order. Sent, it replaces them all.")
    crowd_message = serializers.CharField(
        required=False, allow_blank=True, max_length=MESSAGE_MAX_LENGTH,
        help_text="Plain text every waiting fan sees at once, until cleared (blank clears it, translations too).")
    draw_commitment = serializers.CharField(
        read_only=True, help_text="SHA-256 of the event's draw seed, hex: the seed itself is revealed at the opening "
                                  "(GET /api/events/<id>/draw/).")
    crowd_message_translations = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=MESSAGE_MAX_LENGTH), required=False,
        help_text='Optional, per page language: {"de": "..."}; fans of other languages see `crowd_message`.')

    class Meta:
        model = Event
        fields = [
            "id", "name", "slug", "sale_starts_at", "prequeue_opens_at", "queue_enabled", "queueing_method", "paused",
            "draining", "admit_per_minute", "health_check_url", "pow_difficulty",
            "max_active", "token_ttl_seconds", "reservation_url",
            "session_mode", "session_idle_seconds", "session_max_seconds", "routes", "bypass_rules",
            "created_by", "created_at", "updated_at",
            "entry_policy", "closed_message", "enqueue_key",
            "crowd_message", "crowd_message_translations", "crowd_message_updated_at", "draw_commitment",
        ]
        read_only_fields = ["created_by", "created_at", "updated_at", "crowd_message_updated_at", "draw_commitment"]
        extra_kwargs = {"enqueue_key": {"write_only": True}}  # the shared secret never leaves QMS again

    def validate_enqueue_key(self, value: str) -> str:
        if value:
            try:
                verification_key(value)
            except UnusableKey as unusable:
                raise serializers.ValidationError(str(unusable), code="invalid_key") from None
        return value.strip()

    def validate_crowd_message_translations(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(translated_languages()))
        if unknown:
            raise serializers.ValidationError(
                f"No page language {', '.join(unknown)}; translations may be given for: "
                f"{', '.join(translated_languages())}.", code="unknown_language")
        return value

    def validate_reservation_url(self, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Use an http or https URL.", code="invalid_scheme")
        return value

    def validate(self, attrs: dict) -> dict:
        opens = attrs.get("prequeue_opens_at", getattr(self.instance, "prequeue_opens_at", None))
        starts = attrs.get("sale_starts_at", getattr(self.instance, "sale_starts_at", None))
        if opens and starts and opens > starts:
            raise serializers.ValidationError({"prequeue_opens_at": "The pre-queue must open before the sale starts."})
        _refuse_unless_clean(check_session_limits, self._current("session_idle_seconds", attrs),
                             self._current("session_max_seconds", attrs))
        if self._current("entry_policy", attrs) == EntryPolicy.INVITE_ONLY and not self._current("enqueue_key", attrs):
            raise serializers.ValidationError({"enqueue_key": ErrorDetail(
                "An invite-only event needs the key its enqueue tokens are signed with.", code="required")})
        return attrs

    def validate_slug(self, value: str) -> str:
        if value and Event.objects.filter(slug=value).exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise serializers.ValidationError("An event with this slug already exists.", code="unique")
        return value

    def _current(self, field: str, attrs: dict):
        """`field` as it will be saved: sent, else the event's, else the model's default (a new event)."""
        if field in attrs:
            return attrs[field]
        if self.instance is not None:
            return getattr(self.instance, field)
        return Event._meta.get_field(field).get_default()

    def validate_routes(self, routes: list[dict]) -> list[dict]:
        seen = set()
        for route in routes:
            key = (route["host"], route["path_prefix"])
            if key in seen:
                raise serializers.ValidationError(f"{key[0]}{key[1]} is listed twice.", code="duplicate_route")
            seen.add(key)
        return routes

    def create(self, validated_data: dict) -> Event:
        routes, rules = validated_data.pop("routes", None), validated_data.pop("bypass_rules", None)
        with _routes_saved():
            return self._replace(super().create(validated_data), routes, rules)

    def update(self, instance: Event, validated_data: dict) -> Event:
        routes, rules = validated_data.pop("routes", None), validated_data.pop("bypass_rules", None)
        with _routes_saved():
            return self._replace(super().update(instance, validated_data), routes, rules)

    @staticmethod
    def _replace(event: Event, routes: list[dict] | None, rules: list[dict] | None) -> Event:
        """Replace-all: a list sent stands for the whole set (an empty one removes all); one not sent is kept.

        Row by row (a handful), so the saves' signals reach the gate's copy of the routes.
        """
        if routes is not None:
            event.routes.all().delete()
            for route in routes:
                ProtectedRoute.objects.create(event=event, **route)
        if rules is not None:
            event.bypass_rules.all().delete()
            for position, rule in enumerate(rules):
                BypassRule.objects.create(event=event, **{**rule, "position": position})
        return event
