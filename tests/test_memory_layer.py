"""The embedded channel layer keeps Channels' in-memory semantics (send, receive, groups, expiry, capacity).

The first tests are Channels' own (tests/test_inmemorychannel.py of django/channels), run against
Channels' layer and ours alike: the same expectations hold for both. The rest pin down what ours changes
underneath (expiry found through heaps and a channel → groups index) without changing what a caller sees.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from queues.realtime.memory_layer import MemoryChannelLayer

BOTH = pytest.mark.parametrize("layer_class", [InMemoryChannelLayer, MemoryChannelLayer],
                               ids=["channels", "qms"])


async def nothing_arrives(layer, channel: str, within: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), within)
    except TimeoutError:
        return True
    return False


# Channels' own tests, on both layers

@BOTH
@pytest.mark.asyncio
async def test_send_receive(layer_class):
    layer = layer_class(capacity=3)
    await layer.send("test-channel-1", {"type": "test.message", "text": "Ahoy-hoy!"})
    message = await layer.receive("test-channel-1")
    assert message == {"type": "test.message", "text": "Ahoy-hoy!"}


@BOTH
@pytest.mark.asyncio
async def test_send_capacity(layer_class):
    layer = layer_class(capacity=3)
    for _ in range(3):
        await layer.send("test-channel-1", {"type": "test.message"})
    with pytest.raises(ChannelFull):
        await layer.send("test-channel-1", {"type": "test.message"})


@BOTH
@pytest.mark.asyncio
async def test_process_local_send_receive(layer_class):
    layer = layer_class(capacity=3)
    channel_name = await layer.new_channel()
    await layer.send(channel_name, {"type": "test.message", "text": "Local only please"})
    assert (await layer.receive(channel_name))["text"] == "Local only please"


@BOTH
@pytest.mark.asyncio
async def test_multi_send_receive_keeps_order(layer_class):
    layer = layer_class(capacity=3)
    for n in (1, 2, 3):
        await layer.send("test-channel-3", {"type": f"message.{n}"})
    assert [(await layer.receive("test-channel-3"))["type"] for _ in range(3)] == [
        "message.1", "message.2", "message.3"]


@BOTH
@pytest.mark.asyncio
async def test_groups_basic(layer_class):
    layer = layer_class(capacity=3)
    for n in (1, 2, 3):
        await layer.group_add("test-group", f"test-gr-chan-{n}")
    await layer.group_discard("test-group", "test-gr-chan-2")
    await layer.group_send("test-group", {"type": "message.1"})
    async with asyncio.timeout(1):
        assert (await layer.receive("test-gr-chan-1"))["type"] == "message.1"
        assert (await layer.receive("test-gr-chan-3"))["type"] == "message.1"
    assert await nothing_arrives(layer, "test-gr-chan-2")


@BOTH
@pytest.mark.asyncio
async def test_group_send_ignores_a_full_channel(layer_class):
    layer = layer_class(capacity=3)
    await layer.group_add("test-group", "test-gr-chan-1")
    await layer.group_add("test-group", "test-gr-chan-2")
    for _ in range(5):
        await layer.group_send("test-group", {"type": "message.1"})
    assert [(await layer.receive("test-gr-chan-2"))["type"] for _ in range(3)] == ["message.1"] * 3
    assert await nothing_arrives(layer, "test-gr-chan-2")


@BOTH
@pytest.mark.asyncio
async def test_expiry_single(layer_class):
    layer = layer_class(expiry=0.1)
    await layer.send("test-channel-1", {"type": "message.1"})
    assert len(layer.channels) == 1
    await asyncio.sleep(0.15)
    assert await nothing_arrives(layer, "test-channel-1")
    assert len(layer.channels) == 0


@BOTH
@pytest.mark.asyncio
async def test_expiry_unread(layer_class):
    """A message expires and its channel is cleaned up even if nobody reads that channel again."""
    layer = layer_class(expiry=0.1)
    await layer.send("test-channel-1", {"type": "message.1"})
    await asyncio.sleep(0.15)
    await layer.send("test-channel-2", {"type": "message.2"})
    assert len(layer.channels) == 2
    assert (await layer.receive("test-channel-2"))["type"] == "message.2"
    assert len(layer.channels) == 0


@BOTH
@pytest.mark.asyncio
async def test_expiry_multi(layer_class):
    layer = layer_class(expiry=0.1)
    for n in (1, 2, 3):
        await layer.send("test-channel-1", {"type": f"message.{n}"})
    assert (await layer.receive("test-channel-1"))["type"] == "message.1"
    await asyncio.sleep(0.15)
    await layer.send("test-channel-1", {"type": "message.4"})
    assert (await layer.receive("test-channel-1"))["type"] == "message.4"
    assert await nothing_arrives(layer, "test-channel-1")
    assert len(layer.channels) == 0


# What a caller sees of expiry and groups, on both layers

@BOTH
@pytest.mark.asyncio
async def test_an_expired_message_takes_its_channel_out_of_every_group(layer_class):
    layer = layer_class(expiry=0.1)
    for group in ("event.1", "fan.1.7"):
        await layer.group_add(group, "dead")
        await layer.group_add(group, "alive")
    await layer.send("dead", {"type": "never.read"})
    await asyncio.sleep(0.15)
    await layer.group_send("event.1", {"type": "progress"})
    await layer.group_send("fan.1.7", {"type": "admitted"})
    assert [(await layer.receive("alive"))["type"] for _ in range(2)] == ["progress", "admitted"]
    assert await nothing_arrives(layer, "dead")


@BOTH
@pytest.mark.asyncio
async def test_a_message_read_in_time_does_not_expire_its_channel(layer_class):
    layer = layer_class(expiry=0.2)
    await layer.group_add("event.1", "reader")
    await layer.send("reader", {"type": "first"})
    assert (await layer.receive("reader"))["type"] == "first"
    await asyncio.sleep(0.25)
    await layer.group_send("event.1", {"type": "second"})
    async with asyncio.timeout(1):
        assert (await layer.receive("reader"))["type"] == "second"


@BOTH
@pytest.mark.asyncio
async def test_group_membership_expires_after_group_expiry(layer_class):
    layer = layer_class(group_expiry=1)
    await layer.group_add("event.1", "old")
    # Memberships are judged in whole seconds (Channels compares with int(time.time()) - group_expiry).
    layer.groups["event.1"]["old"] -= 3
    if isinstance(layer, MemoryChannelLayer):  # its heap holds the join time it was given
        layer._compact_membership_expiries()
    await layer.group_add("event.1", "new")
    await layer.group_send("event.1", {"type": "progress"})
    async with asyncio.timeout(1):
        assert (await layer.receive("new"))["type"] == "progress"
    assert await nothing_arrives(layer, "old")


@BOTH
@pytest.mark.asyncio
async def test_rejoining_a_group_renews_the_membership(layer_class):
    layer = layer_class(group_expiry=1)
    await layer.group_add("event.1", "fan")
    layer.groups["event.1"]["fan"] -= 3  # joined long ago...
    if isinstance(layer, MemoryChannelLayer):
        layer._compact_membership_expiries()
    await layer.group_add("event.1", "fan")  # ...and again now
    await layer.group_send("event.1", {"type": "progress"})
    async with asyncio.timeout(1):
        assert (await layer.receive("fan"))["type"] == "progress"


@BOTH
@pytest.mark.asyncio
async def test_messages_are_copies(layer_class):
    layer = layer_class()
    message = {"type": "admitted", "token": ["a"]}
    await layer.group_add("fan.1.7", "one")
    await layer.group_add("fan.1.7", "two")
    await layer.group_send("fan.1.7", message)
    message["token"].append("changed")
    first = await layer.receive("one")
    first["token"].append("mine")
    assert (await layer.receive("two"))["token"] == ["a"]


@BOTH
@pytest.mark.asyncio
async def test_flush_forgets_channels_and_groups(layer_class):
    layer = layer_class()
    await layer.group_add("event.1", "fan")
    await layer.send("fan", {"type": "x"})
    await layer.flush()
    await layer.group_send("event.1", {"type": "progress"})
    assert await nothing_arrives(layer, "fan")


# Ours underneath

@pytest.mark.asyncio
async def test_a_clean_does_not_visit_channels_or_members_that_have_not_expired():
    """The quadratic cost of Channels' layer: every receive walked every channel and member."""
    layer = MemoryChannelLayer()
    for n in range(1000):
        await layer.group_add("event.1", f"fan{n}")
        await layer.group_add(f"fan.1.{n}", f"fan{n}")
        await layer.send(f"fan{n}", {"type": "queued"})
    visited = []
    layer.channels = VisitCounting(layer.channels, visited)
    layer._clean_expired()
    assert visited == []


class VisitCounting(dict):
    """A `channels` dict that records every read of it."""

    def __init__(self, data, visited):
        super().__init__(data)
        self.visited = visited

    def get(self, key, default=None):
        self.visited.append(key)
        return super().get(key, default)

    def items(self):
        self.visited.append("items()")
        return super().items()

    def __iter__(self):
        self.visited.append("iter()")
        return super().__iter__()


@pytest.mark.asyncio
async def test_stale_membership_entries_are_compacted():
    """Each group_add leaves a heap entry until group_expiry (a day): a discarded one must not pile up."""
    layer = MemoryChannelLayer()
    for n in range(10_000):
        await layer.group_add(f"fan.1.{n}", f"socket{n}")
        await layer.group_discard(f"fan.1.{n}", f"socket{n}")
    assert len(layer._membership_expiries) <= 1024 + 1
    assert layer.groups == {} and layer._groups_of == {}


@pytest.mark.asyncio
async def test_expiry_takes_out_of_groups_without_walking_every_group():
    layer = MemoryChannelLayer(expiry=0.05)
    for n in range(2000):
        await layer.group_add(f"fan.1.{n}", f"socket{n}")
    await layer.group_add("event.1", "socket0")
    await layer.send("socket0", {"type": "never.read"})
    await asyncio.sleep(0.1)
    layer.groups = VisitCounting(layer.groups, visited := [])
    layer._clean_expired()
    assert sorted(visited) == ["event.1", "fan.1.0"]
    assert "socket0" not in layer.groups.get("event.1", {}) and "fan.1.0" not in layer.groups
