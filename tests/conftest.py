"""Fixtures: real Redis (never skipped in CI), both store backends, users and events."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from queues.store import get_store, reset_store_cache
from tests.services import REDIS_URL, require_service


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require_service("Redis at " + REDIS_URL, exc)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own, deleted afterwards."""
    prefix = f"qms-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory) -> str:
    """A three-master Redis Cluster of this run's own (tests/e2e/redis_nodes.py), stopped at the end."""
    from tests.e2e.redis_nodes import redis_cluster

    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster.url


def store_settings(backend: str, request) -> dict:
    if backend == "memory":
        return {"BACKEND": "queues.store.memory.MemoryQueueStore"}
    if backend == "redis-cluster":
        return {"BACKEND": "queues.store.redis.RedisQueueStore", "CLUSTER": True,
                "URL": request.getfixturevalue("redis_cluster_url"), "PREFIX": f"qms-test-{uuid.uuid4().hex[:10]}"}
    return {
        "BACKEND": "queues.store.redis.RedisQueueStore",
        "URL": request.getfixturevalue("redis_url"),
        "PREFIX": request.getfixturevalue("redis_prefix"),
    }


@pytest.fixture(params=["memory", "redis"])
def store(request, settings):
    """The configured store, once per backend; the service layer uses it through settings. A module may name
    other backends (`store_backends`: the contract suite adds "redis-cluster")."""
    settings.QMS_STORE = store_settings(request.param, request)
    reset_store_cache()
    yield get_store()
    reset_store_cache()


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    """A module's `store_backends` replace the `store` fixture's params (as a mark, which pytest lets win)."""
    backends = getattr(metafunc.module, "store_backends", None)
    if backends and "store" in metafunc.fixturenames:
        metafunc.definition.add_marker(pytest.mark.parametrize("store", backends, indirect=True))


@pytest.fixture
def redis_store(settings, request):
    """Production's store alone (Redis, shared by every process): for code that runs in a process of its own
    (the management commands) and must see the server's queue."""
    settings.QMS_STORE = store_settings("redis", request)
    reset_store_cache()
    yield get_store()
    reset_store_cache()


@pytest.fixture
def make_user(django_user_model):
    counter = iter(range(1, 10**9))

    def make(username: str | None = None, **fields):
        return django_user_model.objects.create_user(username=username or f"fan{next(counter)}",
                                                     password="pw-123456", **fields)

    return make


@pytest.fixture
def make_event(db):
    from events.models import Event

    def make(**fields):
        defaults = {
            "name": f"Event {uuid.uuid4().hex[:6]}",
            "sale_starts_at": timezone.now() - timedelta(minutes=1),
            "admit_per_minute": 600,
            "max_active": 1000,
            "reservation_url": "https://tickets.example/reserve",
        }
        defaults.update(fields)
        return Event.objects.create(**defaults)

    return make


@pytest.fixture(autouse=True)
def forget_process_copies():
    """Each test starts with this process's memory of users and copies of events and gate routes empty (one
    test's rows are not another's, even when a flushed database hands out an id again)."""
    from queues.gate import gate_routes
    from queues.known_users import known_users
    from queues.recent_events import recent_events

    known_users.clear()
    recent_events.clear()
    gate_routes.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Logins in tests hash with MD5: PBKDF2's deliberate slowness tests nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def channel_layer_settings(backend: str, request) -> dict:
    if backend == "memory":
        return {"default": {"BACKEND": "queues.realtime.memory_layer.MemoryChannelLayer"}}
    from django.conf import settings as django_settings

    config = dict(django_settings.CHANNEL_LAYERS["default"]["CONFIG"]) if "CONFIG" in django_settings.CHANNEL_LAYERS[
        "default"] else {}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        **config,
        "hosts": [{"address": request.getfixturevalue("redis_url"), "max_connections": 200, "socket_timeout": None}],
        "prefix": request.getfixturevalue("redis_prefix") + ":asgi",
    }}}


@pytest.fixture(params=["embedded", "redis"])
def realtime(request, settings):
    """Store and channel layer together: in-memory both (embedded) or real Redis both (production)."""
    backend = "memory" if request.param == "embedded" else "redis"
    settings.QMS_STORE = store_settings(backend, request)
    settings.CHANNEL_LAYERS = channel_layer_settings(backend, request)
    reset_store_cache()
    yield request.param
    reset_store_cache()


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Throttle counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def redis_cache(settings, redis_url, redis_prefix):
    """Production's cache (Redis, shared by every process) under this test's own key prefix."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "KEY_PREFIX": redis_prefix + ":cache",
    }}


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request):
    """The cache holding throttle counters and used proof-of-work challenges: in-process (embedded), or the
    Redis cache every production process shares."""
    if request.param == "redis":
        request.getfixturevalue("redis_cache")
    return request.param
