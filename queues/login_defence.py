"""Login defence that keeps shared addresses working: FAILED logins are counted, per username and per address, on
the shared cache; successful ones are never counted (a stadium's Wi-Fi or a carrier's NAT puts thousands of fans
behind one address, and the on-sale is when they all log in). Every login uses it: the token login
(`POST /api/auth/token/`), the page's session login (`/accounts/login/`) and the admin's (`/admin/login/`).

- A username with `QMS_LOGIN_FAILURES_PER_USERNAME` failures within `QMS_LOGIN_USERNAME_LOCK_SECONDS` is locked
  for that long, from every address and even for the right password (`login_locked`); a successful login before
  that resets its count.
- An address with `QMS_LOGIN_FAILURES_PER_ADDRESS` failures (any usernames: a spray) within
  `QMS_LOGIN_ADDRESS_LOCK_SECONDS` waits out that window (`login_address_locked`); a success does not reset it,
  or one valid account would let a sprayer start over. 0 switches the address count off.

Why not django-axes (docs/DEPLOYMENT.md, "Login defence"): one failure limit for every lockout parameter, and a
success deletes the address's count too.
"""

from __future__ import annotations

import math
from typing import ClassVar

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.translation import ngettext
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.views import TokenObtainPairView

from .failure_counts import CountedAttempt, FailureCount, Lockout, address_key, digest
from .refusals import Refusal

KEY_PREFIX = "login_defence"


class LoginLocked(Lockout, Refusal):
    """Too many failed logins: nothing is checked until `Retry-After` seconds have passed."""

    code, detail = "login_locked", "Too many failed logins for this username: wait `Retry-After` seconds (the " \
                                   "right password is refused too until then)."
    codes: ClassVar[dict[str, str]] = {
        "login_locked": detail,
        "login_address_locked": "Too many failed logins from this address (many usernames): wait `Retry-After` "
                                "seconds. Successful logins are never counted.",
    }


class LoginAttempt(CountedAttempt):
    """One login attempt's two counts; the views call `refuse_if_locked` (before the password is even hashed: a
    locked username or address costs no CPU), then `failed` (a wrong password) or `succeeded`."""

    lockout = LoginLocked

    def __init__(self, request, username: object):
        username = username if isinstance(username, str) else ""
        self.username = None if not username.strip() else FailureCount(
            "login_locked", f"{KEY_PREFIX}:username:{digest(username.strip())}",
            settings.QMS_LOGIN_FAILURES_PER_USERNAME, settings.QMS_LOGIN_USERNAME_LOCK_SECONDS)
        super().__init__(self.username, FailureCount(
            "login_address_locked", f"{KEY_PREFIX}:address:{digest(address_key(request))}",
            settings.QMS_LOGIN_FAILURES_PER_ADDRESS, settings.QMS_LOGIN_ADDRESS_LOCK_SECONDS))

    def succeeded(self) -> None:
        """The username starts over; the address keeps its count (see the module docstring)."""
        if self.username is not None:
            self.username.reset()


class TokenLoginView(TokenObtainPairView):
    """SimpleJWT's token login behind the login defence (a wrong password is its `no_active_account`)."""

    def post(self, request, *args, **kwargs):
        body = request.data if hasattr(request.data, "get") else {}  # a JSON list: the serializer's 400
        attempt = LoginAttempt(request, body.get(get_user_model().USERNAME_FIELD))
        attempt.refuse_if_locked()
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            attempt.failed()
            raise
        attempt.succeeded()
        return response


def lock_message(locked: LoginLocked) -> str:
    """The login page's words for a lock, in the page's language (minutes, rounded up)."""
    minutes = math.ceil(locked.retry_after / 60)
    if locked.code == "login_address_locked":
        return ngettext("Too many failed logins from your network. Please try again in %(minutes)d minute.",
                        "Too many failed logins from your network. Please try again in %(minutes)d minutes.",
                        minutes) % {"minutes": minutes}
    return ngettext("Too many failed logins for this username. Please try again in %(minutes)d minute.",
                    "Too many failed logins for this username. Please try again in %(minutes)d minutes.",
                    minutes) % {"minutes": minutes}


class DefendedLoginForm(AuthenticationForm):
    """Django's login form behind the defence: the page's, and with the admin's form mixed in, the admin's. A lock
    is checked before the password (a locked username or address costs no hash) and is the form's error; a wrong
    password counts a failure (an empty field does not); a success resets the username's count."""

    locked: LoginLocked | None = None

    def clean(self):
        attempt = LoginAttempt(self.request, self.data.get("username"))
        try:
            attempt.refuse_if_locked()
            try:
                cleaned = super().clean()
            except ValidationError as invalid:
                if invalid.code == "invalid_login":
                    attempt.failed()  # the failure that locks answers with the lock at once
                raise
        except LoginLocked as locked:
            self.locked = locked
            raise ValidationError(lock_message(locked), code=locked.code) from None
        attempt.succeeded()
        return cleaned


class DefendedAdminLoginForm(DefendedLoginForm, AdminAuthenticationForm):
    """The admin's login (`admin.site.login_form`): the same counts as every other login."""


class PageLoginView(LoginView):
    """The page's session login: a lock answers 429 with the form and a clear message."""

    authentication_form = DefendedLoginForm

    def form_invalid(self, form) -> HttpResponse:
        if form.locked is None:
            return super().form_invalid(form)
        # Unbound (the lock is said once, above it): the username stays, the password is not echoed back.
        unbound = self.get_form_class()(self.request, initial={"username": self.request.POST.get("username", "")})
        context = self.get_context_data(form=unbound, login_locked=lock_message(form.locked))
        return self.render_to_response(context, status=429, headers=form.locked.headers())
