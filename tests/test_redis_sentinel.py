"""Every Redis user follows a Sentinel master through a failover: the queue store (both its clients), the
channel layer, Celery's broker and the cache, each configured by qms_project/redis_config.py.

One Sentinel group of the module's own (tests/e2e/redis_nodes.py): each user is built and used on the first
master, the master is killed, the sentinels promote the replica, and each test checks one user on the new one.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from channels_redis.core import RedisChannelLayer
from django.core.cache.backends.redis import RedisCache
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

from qms_project import redis_config
from queues.store import build_store
from queues.store.base import BaseQueueStore
from tests.e2e.redis_nodes import MASTER_NAME, sentinel_group

EVENT = 3


@dataclass
class Users:
    location: redis_config.RedisLocation
    prefix: str
    store: BaseQueueStore
    cache: RedisCache
    old_master: int
    worker_cleanup_error: Exception | None = None  # what the worker's broker cleanup raised (it must not)
    new_master: int = 0


def channel_layer(location: redis_config.RedisLocation, prefix: str) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[redis_config.channel_host(location, max_connections=20, socket_timeout=None)],
                             prefix=f"{prefix}:asgi")


def broker(location: redis_config.RedisLocation) -> Connection:
    url, options = redis_config.celery_broker(location)
    return Connection(url, transport_options=options, connect_timeout=5)


def holding_a_message(location: redis_config.RedisLocation, prefix: str) -> Connection:
    """A broker connection as a busy worker's is when the master dies: one message delivered and not yet
    acknowledged (a task running with acks_late), the next BRPOP sent, and a fanout queue of its own
    listened to (the worker's remote control)."""
    connection = broker(location)
    queue = Queue(f"{prefix}.held")
    control = Queue(f"{prefix}.control", Exchange(f"{prefix}.control", type="fanout"), auto_delete=True)
    connection.Producer().publish({"n": 1}, routing_key=queue.name, declare=[queue])
    held = []
    connection.Consumer([queue, control], callbacks=[lambda body, message: held.append(message)]).consume()
    connection.drain_events(timeout=5)
    assert len(held) == 1
    for _ in range(10):  # the fanout's subscription replies, then nothing more: the BRPOP stays in flight
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            return connection
    raise AssertionError("the connection kept receiving")


def clean_up_as_a_worker(connection: Connection) -> Exception | None:
    """What Celery's consumer does when its broker connection breaks (Consumer.on_connection_error_after_connected),
    before it reconnects: collect the connection, ignoring whatever that raises, then close it, ignoring
    connection errors. Returns what escaped (Celery calls it unrecoverable and the worker exits)."""
    try:
        connection.collect(socket_timeout=2)
    except Exception:  # noqa: BLE001 - as Celery does
        pass
    try:
        ignore_errors(connection, connection.close)
    except Exception as escaped:  # noqa: BLE001 - the test reports it
        return escaped
    return None


@pytest.fixture(scope="module")
def failed_over(tmp_path_factory):
    """The four users, each used once on the first master; then that master SIGKILLed and a replica promoted."""
    with sentinel_group(tmp_path_factory.mktemp("sentinel")) as group:
        location = redis_config.RedisLocation(
            sentinels=tuple(("127.0.0.1", group.ports[name]) for name in ("sentinel1", "sentinel2", "sentinel3")),
            master=MASTER_NAME)
        prefix = f"qms-test-{uuid.uuid4().hex[:8]}"
        store = build_store({"BACKEND": "queues.store.redis.RedisQueueStore", "PREFIX": prefix,
                             **redis_config.store_options(location, cluster_url="", wait_replicas=1,
                                                          wait_timeout_ms=1000)})
        cache_config = redis_config.cache(location, key_prefix=f"{prefix}:cache")
        cache = RedisCache(cache_config["LOCATION"], cache_config)
        users = Users(location, prefix, store, cache, group.master_port())
        store.join(EVENT, 1, prequeue_key=None, now=1.0)  # WAIT 1: on the replica once answered
        cache.set("before", "kept")
        with broker(location).SimpleQueue(f"{prefix}.q") as queue:
            queue.put({"n": 1})
        group.wait_replicated()
        worker_broker = holding_a_message(location, prefix)
        group.nodes["master"].kill()
        users.worker_cleanup_error = clean_up_as_a_worker(worker_broker)  # at once: no master to be found yet
        users.new_master = group.wait_promoted(users.old_master)
        yield users


def test_the_sentinels_promoted_the_replica(failed_over):
    assert failed_over.new_master != failed_over.old_master


def test_the_store_follows_the_master_and_keeps_a_replicated_join(failed_over):
    store = failed_over.store
    assert store.place(EVENT, 1).ticket == 1
    assert store.join(EVENT, 2, prequeue_key=None, now=2.0).ticket == 2


def test_the_socket_path_client_follows_the_master(failed_over):
    place, _ = asyncio.run(failed_over.store.ajoin_connected(EVENT, 3, "socket-3", prequeue_key=None, now=3.0))
    assert (place.created, place.state) == (True, "waiting")


def test_the_cache_follows_the_master(failed_over):
    assert failed_over.cache.get("before") == "kept"
    failed_over.cache.set("after", "written")
    assert failed_over.cache.get("after") == "written"


def test_the_channel_layer_follows_the_master(failed_over):
    async def round_trip():
        layer = channel_layer(failed_over.location, failed_over.prefix)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "hello"})
        message = await asyncio.wait_for(layer.receive(channel), 10)
        await layer.flush()
        return message

    assert asyncio.run(round_trip()) == {"type": "hello"}


def test_the_celery_broker_follows_the_master(failed_over):
    with broker(failed_over.location).SimpleQueue(f"{failed_over.prefix}.q") as queue:
        for expected in ({"n": 1}, {"n": 2}):
            if expected["n"] == 2:
                queue.put(expected)
            message = queue.get(timeout=10)
            message.ack()
            assert message.payload == expected


def test_a_worker_holding_a_message_survives_losing_the_master(failed_over):
    """Stock kombu 5.7 raised AttributeError from that close, which ended the worker (qms_project/broker.py)."""
    assert failed_over.worker_cleanup_error is None
