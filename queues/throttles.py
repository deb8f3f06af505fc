"""Bot defence beyond login: join and login throttles on the shared cache (429 with Retry-After)."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class JoinPerUserThrottle(UserRateThrottle):
    scope = "join_user"


class PerAddressThrottle(SimpleRateThrottle):
    """Keyed by client address (honours `NUM_PROXIES` for X-Forwarded-For)."""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class JoinPerAddressThrottle(PerAddressThrottle):
    scope = "join_ip"


class LoginPerAddressThrottle(PerAddressThrottle):
    scope = "login_ip"
