"""The JavaScript catalog every arriving fan's page loads is cached (qms_project/urls.py), one copy per language."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import translation
from django.utils.cache import get_cache_key


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_cached_catalog_keeps_each_language_apart(client):
    english = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")  # cached first
    german = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de")
    english_again = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Jeden Moment" in german.content.decode()
    assert "Jeden Moment" not in english.content.decode()
    assert english_again.content == english.content
    assert "Accept-Language" in german["Vary"]  # and browsers keep them apart too


def test_the_catalog_is_served_from_the_cache(client, rf):
    client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="de")
    request = rf.get("/jsi18n/")
    with translation.override("de"):  # the key carries the language the catalog was rendered in
        key = get_cache_key(request, cache=cache)
    assert key is not None and cache.get(key) is not None
