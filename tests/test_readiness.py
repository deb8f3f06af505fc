"""Liveness is cheap and always answers; readiness needs the database, the queue store and the channel layer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from queues.store import reset_store_cache
from tests.e2e.servers import free_port


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # a port nobody listens on: Redis is "down"


@pytest.fixture
def redis_down_for_store(settings):
    settings.QMS_STORE = {"BACKEND": "queues.store.redis.RedisQueueStore", "URL": closed_redis_url()}
    reset_store_cache()
    yield
    reset_store_cache()


@pytest.fixture
def redis_down_for_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
        "hosts": [{"address": closed_redis_url(), "socket_connect_timeout": 2}]}}}


@pytest.mark.django_db
def test_ready_when_database_store_and_channel_layer_answer(realtime):
    response = APIClient().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": True, "store": True, "channel_layer": True}}


@pytest.mark.django_db
def test_not_ready_when_redis_is_down(redis_down_for_store, redis_down_for_channel_layer):
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable",
                               "checks": {"database": True, "store": False, "channel_layer": False}}


@pytest.mark.django_db
def test_not_ready_when_only_the_channel_layer_is_unreachable(realtime, redis_down_for_channel_layer):
    response = APIClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "store": True, "channel_layer": False}


@pytest.mark.django_db
def test_liveness_answers_while_redis_is_down(redis_down_for_store, redis_down_for_channel_layer):
    response = APIClient().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response["Cache-Control"] == "no-store"
