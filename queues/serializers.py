"""Shapes of the queue API's requests and responses."""

from __future__ import annotations

from rest_framework import serializers

from .admission import QueueStatus, redirect_url
from .protocol import FanState


class AdmissionTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    redirect_url = serializers.CharField()


class CrowdMessageSerializer(serializers.Serializer):
    """The operator's message to the waiting crowd (events/crowd_message.py): plain text, show it as text."""

    text = serializers.CharField(help_text="For everyone; shown to a fan whose language has no translation.")
    translations = serializers.DictField(child=serializers.CharField(),
                                         help_text='Per language, e.g. {"de": "..."}: show the one of your language.')
    updated_at = serializers.DateTimeField(allow_null=True, help_text="When the operator last changed it.")


class QueueStatusSerializer(serializers.Serializer):
    # What a fan is shown: PENDING (popped, ledger row being written) reads as WAITING.
    state = serializers.ChoiceField(choices=[state.value for state in FanState if state != FanState.PENDING])
    ticket = serializers.IntegerField()
    position = serializers.IntegerField(allow_null=True, help_text="1-based place among those waiting.")
    ahead = serializers.IntegerField(allow_null=True, help_text="People ahead of you.")
    waiting = serializers.IntegerField(help_text="People waiting in total.")
    served = serializers.IntegerField(help_text="Serving watermark: fans who left the head of the queue so far.")
    eta_seconds = serializers.IntegerField(allow_null=True)
    paused = serializers.BooleanField()
    sale_starts_at = serializers.DateTimeField()
    admission = AdmissionTokenSerializer(allow_null=True)
    message = CrowdMessageSerializer(allow_null=True, help_text="The operator's message to the waiting crowd; null "
                                                                "when there is none.")
    draw_rank = serializers.IntegerField(allow_null=True, help_text="A fan drawn from the pre-queue: their place "
                                                                   "at the opening (kept after admission).")

    def to_representation(self, status: QueueStatus) -> dict:
        admission = None
        if status.admission is not None:
            admission = {
                "token": status.admission.token,
                "expires_at": status.admission.expires_at,
                # `return_url` (context): a `?return=` the view validated against the event's routes.
                "redirect_url": redirect_url(status.admission.event, status.admission.token,
                                             self.context.get("return_url")),
            }
        return super().to_representation({**status.__dict__, "admission": admission})


class DrawSerializer(serializers.Serializer):
    algorithm = serializers.CharField(help_text="hmac-sha256-v1 (docs/ARCHITECTURE.md, \"The provably fair draw\").")
    commitment = serializers.CharField(help_text="SHA-256 of the seed's 32 bytes, hex: public from the start.")
    seed = serializers.CharField(allow_null=True, help_text="The seed's 32 bytes in hex; null before the opening.")
    prequeue_size = serializers.IntegerField(
        allow_null=True, help_text="Fans drawn (as recorded at the opening); before it, fans in the pre-queue now.")
    opened = serializers.BooleanField(help_text="The sale has opened: the seed is revealed.")
    recorded = serializers.BooleanField(help_text="The draw's entries are recorded (the first tick after the "
                                                  "opening).")
    entries_url = serializers.CharField()


class DrawEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1-based place at the opening.")
    ticket = serializers.IntegerField()
    key = serializers.CharField(help_text="HMAC-SHA256(seed, \"<event id>:<user id>\")[:8] in hex.")


class DrawEntriesSerializer(serializers.Serializer):
    entries = DrawEntrySerializer(many=True)


class QueueStatsSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    waiting = serializers.IntegerField()
    served = serializers.IntegerField()
    joined_total = serializers.IntegerField()
    admitted_total = serializers.IntegerField(help_text="Admissions ever issued for the event (the ledger).")
    abandoned_total = serializers.IntegerField()
    live_admissions = serializers.IntegerField()
    max_active = serializers.IntegerField()
    admitted_last_minute = serializers.IntegerField()
    observed_rate_per_minute = serializers.FloatField()
    configured_rate_per_minute = serializers.IntegerField()
    eta_last_seconds = serializers.IntegerField(
        help_text="Until the last in line is admitted; before the opening, including the time until it.")
    paused = serializers.BooleanField()
    draining = serializers.BooleanField(help_text="No new joins; everyone waiting is still admitted.")
    prequeue = serializers.BooleanField(help_text="Joins land in the pre-queue (the sale has not opened).")
    sale_starts_at = serializers.DateTimeField()
    queue_enabled = serializers.BooleanField()
    sale_open = serializers.BooleanField()


class VerifyRequestSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=4096)
    redeem = serializers.BooleanField(default=False)
    event = serializers.IntegerField(required=False, help_text="Refuse tokens for any other event.")


class VerifyResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    claims = serializers.DictField()
    redeemed = serializers.BooleanField(help_text="This call redeemed the token.")
    redeemed_at = serializers.DateTimeField(allow_null=True)


class ReleaseRequestSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=4096)


class ReleaseResponseSerializer(serializers.Serializer):
    released = serializers.BooleanField()
    already_released = serializers.BooleanField()
    released_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
