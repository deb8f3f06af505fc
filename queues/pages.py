"""Server-rendered pages: the landing list, the fan's waiting room, and the demo reservation desk."""

from __future__ import annotations

import time

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from events.models import Event

from . import admission, draw
from .gate import validated_return_url
from .protocol import page_protocol
from .refusals import Refusal

# What the demo desk tells a fan whose token it refuses (the codes are docs/API.md's; the fan reads words).
TOKEN_REFUSALS = {
    "token_missing": _("Open this page from the waiting room: it needs the admission you get there."),
    "token_expired": _("Your admission has expired. Go back to the waiting room to queue again."),
    "token_not_yet_valid": _("Your admission is not valid yet. Wait a moment and reload this page."),
    "token_already_redeemed": _("This admission was already used to book. Each admission books once."),
    "token_released": _("This admission was given back, so it no longer lets you in."),
    "token_wrong_event": _("This admission is for another event."),
    "token_unknown_key": _("This admission was signed by a key this site no longer trusts. Go back to the queue."),
    "token_unknown": _("No admission was issued with this link. Go back to the waiting room."),
}
TOKEN_REFUSED = _("This link does not carry a valid admission. Go back to the waiting room.")


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
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return render(request, "queues/event_not_found.html", status=404)
    asked = request.GET.get("return")
    back = validated_return_url(event, asked) if asked else None
    return render(request, "queues/waiting_room.html", {
        "event": event,
        # Admitted, the fan goes to `return_to` + the token (the page appends it), else to the admission's
        # redirect_url. A return URL off the event's routes is ignored and said so: the fan still queues.
        "return_to": admission.redirect_url(event, "", back) if back else "",
        "return_refused": bool(asked) and back is None,
        "protocol": page_protocol(),  # close codes, message kinds, states: the script reads them from here
        "sale_open": event.sale_open(),
        "server_now_ms": int(time.time() * 1000),
        "ws_path": f"/ws/events/{event.id}/queue/",
        "status_url": f"/api/events/{event.id}/queue/",
        # The fair draw (issue 19): the commitment to note before the opening, what static/qms/draw-check.js
        # needs to recompute the fan's key after it (`user_id`), and the public page that explains it.
        "draw_commitment": "" if event.sale_open() else event.draw_commitment,
        "draw_url": reverse("draw", args=[event.id]),
        "draw_page_url": reverse("draw-explained", args=[event.id]),
        "user_id": request.user.pk,
    })


@never_cache  # the seed appears at the opening: no copy of the page from before it may be served after
def draw_explained(request: HttpRequest, event_id: int) -> HttpResponse:
    """The fair draw in plain words for anyone (no login): the rule, this event's commitment and, from the
    opening, its seed, a ten-line verifier, and what the scheme proves and what it does not."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return render(request, "queues/event_not_found.html", status=404)
    return render(request, "queues/draw_explained.html", {
        "event": event,
        "draw": {"commitment": event.draw_commitment, "seed": draw.revealed_seed(event)},
        "draw_url": reverse("draw", args=[event.id]),
        "entries_url": reverse("draw-entries", args=[event.id]),
    })


@never_cache
@require_http_methods(["GET", "POST"])
def demo_reservation(request: HttpRequest) -> HttpResponse:
    """A stand-in for the reservation service: verifies the token; "book" redeems it and frees the slot."""
    token = (request.POST.get("token") if request.method == "POST" else request.GET.get("token")) or ""
    context: dict = {"token": token}
    if not token:
        return _refused(request, context, "token_missing")
    try:
        claims, row = admission.verify(token, redeem=request.method == "POST")
    except Refusal as exc:  # a refused token, or one released or redeemed
        return _refused(request, context, exc.code)
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


def _refused(request: HttpRequest, context: dict, code: str) -> HttpResponse:
    context["error"] = {"code": code, "message": TOKEN_REFUSALS.get(code, TOKEN_REFUSED)}
    return render(request, "queues/demo_reservation.html", context, status=400)
