"""The forward-auth gate (issue 15): a reverse proxy asks `/gate/auth` about each request to a protected site.

`routes` holds the per-process copy of which event guards which host and path (and its bypass rules);
`validated_return_url` is what the waiting room may send an admitted fan back to.
"""

from .routes import gate_routes, route_host, validated_return_url

__all__ = ["gate_routes", "route_host", "validated_return_url"]
