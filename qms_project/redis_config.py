"""Where QMS's Redis runs, and each Redis user's configuration built from it.

Four users share one logical Redis: the queue store, channels_redis, Celery's broker and the cache. It is
either one server (`QMS_REDIS_URL`) or a master that Redis Sentinel follows through a failover
(`QMS_REDIS_SENTINELS` + `QMS_REDIS_SENTINEL_MASTER`); the queue store alone may instead run on a Redis
Cluster (`QMS_REDIS_CLUSTER_URL`): the other three have no Cluster support. docs/DEPLOYMENT.md, "Redis".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import redis.sentinel


@dataclass(frozen=True)
class RedisLocation:
    """One server (`url`), or the master named `master` that these `sentinels` follow."""

    url: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    password: str = ""  # the master's and replicas' own (requirepass / masterauth)
    sentinel_password: str = ""  # the sentinels' (their requirepass), when they have one

    def __post_init__(self):
        if self.sentinels and not self.master:
            raise ValueError("QMS_REDIS_SENTINELS needs QMS_REDIS_SENTINEL_MASTER: the name the sentinels monitor")

    @property
    def configured(self) -> bool:
        """Production: some Redis is named (otherwise the embedded default runs on memory)."""
        return bool(self.url or self.sentinels)

    @property
    def sentinel_kwargs(self) -> dict:
        """How to talk to the sentinels themselves."""
        return {"password": self.sentinel_password} if self.sentinel_password else {}


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (IPv6 hosts in brackets: `[::1]:26379`) as (host, port) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"QMS_REDIS_SENTINELS: {item!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)


def store_options(location: RedisLocation, *, cluster_url: str, wait_replicas: int, wait_timeout_ms: int) -> dict:
    """`QMS_STORE`'s options for the Redis store (queues/store/redis.py): a Cluster when one is named."""
    if cluster_url:
        return {"URL": cluster_url, "CLUSTER": True}
    options = {"WAIT_REPLICAS": wait_replicas, "WAIT_TIMEOUT_MS": wait_timeout_ms}
    if location.sentinels:
        return {**options, "SENTINELS": location.sentinels, "SENTINEL_MASTER": location.master, "DB": location.db,
                "PASSWORD": location.password, "SENTINEL_PASSWORD": location.sentinel_password}
    return {**options, "URL": location.url}


def channel_host(location: RedisLocation, **pool) -> dict:
    """One channels_redis host (a dict, with the pool options `pool`: see the known pitfalls in DESIGN.md).

    channels_redis builds a SentinelConnectionPool for a host that has `master_name` (channels_redis/utils.py).
    """
    if not location.sentinels:
        return {"address": location.url, **pool}
    auth = {"password": location.password} if location.password else {}
    return {"master_name": location.master, "sentinels": list(location.sentinels),
            "sentinel_kwargs": location.sentinel_kwargs, "db": location.db, **auth, **pool}


def celery_broker(location: RedisLocation) -> tuple[str, dict]:
    """Celery's broker URL and the transport options it needs beyond the common ones (kombu's `sentinel://`)."""
    if not location.sentinels:
        return location.url, {}
    auth = f":{quote(location.password, safe='')}@" if location.password else ""
    url = ";".join(f"sentinel://{auth}{_netloc(host, port)}/{location.db}" for host, port in location.sentinels)
    options = {"master_name": location.master}
    if location.sentinel_kwargs:
        options["sentinel_kwargs"] = location.sentinel_kwargs
    return url, options


def cache(location: RedisLocation, *, key_prefix: str) -> dict:
    """Django's RedisCache, through a Sentinel-managed pool when sentinels are named.

    Django builds its pool with `pool_class.from_url(LOCATION, **OPTIONS)`: the URL gives the database and
    password, OPTIONS the Sentinel pool's own arguments; the host in the URL is never dialled.
    """
    if not location.sentinels:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location.url,
                "KEY_PREFIX": key_prefix}
    auth = f":{quote(location.password, safe='')}@" if location.password else ""
    manager = redis.sentinel.Sentinel(list(location.sentinels), sentinel_kwargs=location.sentinel_kwargs)
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{auth}sentinel-managed-master/{location.db}", "KEY_PREFIX": key_prefix,
            "OPTIONS": {"pool_class": "redis.sentinel.SentinelConnectionPool", "service_name": location.master,
                        "sentinel_manager": manager}}


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
