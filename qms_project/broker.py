"""kombu's Redis and Sentinel transports, fixed so that losing the broker never ends the Celery worker.

When the worker's broker connection breaks (a Redis restart, a Sentinel failover), Celery's consumer first
`collect()`s the connection, which detaches it from its transport, then closes it. Closing its channel
restores the unacknowledged messages, which builds a new connection pool from the detached transport's
client: None, so kombu 5.7 raises AttributeError, which Celery treats as unrecoverable and the worker exits
(and with it every admission tick until something restarts it). Here that pool raises the ConnectionError
Celery already handles: the worker reconnects to the (new) master by itself. The messages the close could
not restore stay in the broker's unacked set (kombu restores them after its visibility timeout); the ticks
among them have long expired, and the next beat sends fresh ones. docs/RELIABILITY.md, "Failover".
"""

from __future__ import annotations

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis


class _DetachedSafeChannel:
    """A Redis channel whose pool refuses to build once its connection was detached (see the module)."""

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed: reconnect")
        return super()._connparams(asynchronous=asynchronous)


class Channel(_DetachedSafeChannel, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_DetachedSafeChannel, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def install() -> None:
    """Make the `redis://`, `rediss://` and `sentinel://` broker URLs use these transports.

    By alias, not by Celery's `broker_transport`: kombu re-reads the transport from the URL whenever it
    switches to the next sentinel of the list, which would bring back the stock transport.
    """
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"
