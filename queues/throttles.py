"""Bot defence beyond login: the per-user join throttle on the shared cache (429 with Retry-After).

Nothing here counts per address: a stadium's Wi-Fi or a carrier's NAT puts thousands of fans behind one address,
and they all join in the on-sale's first minute (docs/DEPLOYMENT.md, "Login defence"). Logins are guarded by
queues/login_defence.py, which counts failures only."""

from __future__ import annotations

from rest_framework.throttling import UserRateThrottle


class JoinPerUserThrottle(UserRateThrottle):
    scope = "join_user"
