"""Server-rendered pages: the landing list, the fan's waiting room, and the demo reservation desk."""

from __future__ import annotations

import time

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from events.models import Event

from . import admission
from .tokens import TokenError


def landing(request: HttpRequest) -> HttpResponse:
    """Every event, soonest first, each with a link to its waiting room."""
    events = Event.objects.all()
    now = timezone.now()
    return render(request, "queues/landing.html", {
        "events": [{"event": event, "on_sale": event.sale_open(now)} for event in events],
    })


@never_cache
@login_required
def waiting_room(request: HttpRequest, event_id: int) -> HttpResponse:
    """The fan's live page; the place itself comes over the socket (or the HTTP status as a fallback)."""
    event = get_object_or_404(Event, pk=event_id)
    return render(request, "queues/waiting_room.html", {
        "event": event,
        "sale_open": event.sale_open(),
        "server_now_ms": int(time.time() * 1000),
        "ws_path": f"/ws/events/{event.id}/queue/",
        "status_url": f"/api/events/{event.id}/queue/",
    })


@never_cache
@require_http_methods(["GET", "POST"])
def demo_reservation(request: HttpRequest) -> HttpResponse:
    """A stand-in for the reservation service: verifies the token; "book" redeems it and frees the slot."""
    token = (request.POST.get("token") if request.method == "POST" else request.GET.get("token")) or ""
    context: dict = {"token": token}
    if not token:
        context["error"] = {"code": "token_missing", "detail": "Open this page from the waiting room."}
        return render(request, "queues/demo_reservation.html", context, status=400)
    try:
        claims, row = admission.verify(token, redeem=request.method == "POST")
    except TokenError as exc:
        context["error"] = {"code": exc.code, "detail": exc.detail}
        return render(request, "queues/demo_reservation.html", context, status=400)
    if request.method == "POST":
        admission.release(token)  # the booking is done: the slot goes to the next fan
    context.update({
        "claims": claims,
        "admission": row,
        "event": row.event,
        "booked": request.method == "POST",
        "expires_at": row.expires_at,
    })
    return render(request, "queues/demo_reservation.html", context)
