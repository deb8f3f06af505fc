"""The embedded default's channel layer: Channels' in-memory layer with expiry that costs O(what expired).

Channels' `InMemoryChannelLayer` walks every channel's queue and every group
member in `_clean_expired`, on every `receive` and every `group_send`. A
socket's consumer calls `receive` as it starts, so over a storm of n sockets
that is O(n^2): 14% of a profile of `make run` at 300 new sockets per second,
growing with every socket (docs/PERFORMANCE.md, "Storm capacity: embedded
default"). This layer keeps the same semantics (a message expires after
`expiry` seconds and takes its channel out of every group; a membership
expires after `group_expiry`; `capacity` raises `ChannelFull`) but finds what
expired through two heaps ordered by expiry, and finds a channel's groups
through an index, so a clean looks at nothing that has not expired.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class MemoryChannelLayer(InMemoryChannelLayer):
    """Drop-in for `channels.layers.InMemoryChannelLayer` (same settings, same `channels`/`groups` dicts)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (expires at, channel) per message sent; an entry whose message was received since is skipped.
        self._message_expiries: list[tuple[float, str]] = []
        # (joined at, group, channel) per group_add; an entry for a membership that was discarded or
        # renewed since is skipped. Compacted when stale entries outnumber live memberships.
        self._membership_expiries: list[tuple[float, str, str]] = []
        self._memberships = 0
        self._groups_of: dict[str, set[str]] = {}  # channel -> the groups it is in

    # Messages

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    def _put(self, channel: str, message: dict) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        expires_at = time.time() + self.expiry
        try:
            queue.put_nowait((expires_at, deepcopy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None
        heapq.heappush(self._message_expiries, (expires_at, channel))

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            _, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
        return message

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        # Channels sends to each member through a task of its own; putting on an in-memory queue never
        # waits, so the same puts in a loop deliver the same messages without a task per member.
        for channel in list(self.groups.get(group, ())):
            try:
                self._put(channel, message)
            except ChannelFull:
                pass

    # Expiry

    def _clean_expired(self) -> None:
        now = time.time()
        expiries = self._message_expiries
        while expiries and expiries[0][0] < now:
            _, channel = heapq.heappop(expiries)
            queue = self.channels.get(channel)
            # The same loop as Channels': drop the channel's expired messages, each takes it out of its groups.
            while queue is not None and not queue.empty() and queue._queue[0][0] < now:
                queue.get_nowait()
                self._remove_from_groups(channel)
                if queue.empty():
                    self.channels.pop(channel, None)

        timeout = int(now) - self.group_expiry
        joined = self._membership_expiries
        while joined and joined[0][0] < timeout:
            timestamp, group, channel = heapq.heappop(joined)
            members = self.groups.get(group)
            # Only if this entry is still the membership's join time (not discarded, not renewed since).
            if members is not None and members.get(channel) == timestamp and timestamp:
                self._forget_membership(group, channel, members)

    def _remove_from_groups(self, channel: str) -> None:
        for group in list(self._groups_of.get(channel, ())):
            members = self.groups.get(group)
            if members is not None:
                self._forget_membership(group, channel, members)

    # Groups

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        members = self.groups.setdefault(group, {})
        if channel not in members:
            self._memberships += 1
            self._groups_of.setdefault(channel, set()).add(group)
        joined_at = members[channel] = time.time()
        heapq.heappush(self._membership_expiries, (joined_at, group, channel))
        if len(self._membership_expiries) > 2 * self._memberships + 1024:
            self._compact_membership_expiries()

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_channel_name(channel)
        self.require_valid_group_name(group)
        members = self.groups.get(group)
        if members and channel in members:
            self._forget_membership(group, channel, members)

    def _forget_membership(self, group: str, channel: str, members: dict[str, float]) -> None:
        del members[channel]
        self._memberships -= 1
        groups = self._groups_of.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._groups_of[channel]
        if not members:
            # Channels keeps a group emptied by expiry and drops one emptied by discard; an empty group
            # behaves as an absent one either way, and dropping it keeps `groups` from growing.
            self.groups.pop(group, None)

    def _compact_membership_expiries(self) -> None:
        self._membership_expiries = [(joined_at, group, channel) for group, members in self.groups.items()
                                     for channel, joined_at in members.items()]
        heapq.heapify(self._membership_expiries)

    async def flush(self) -> None:
        await super().flush()
        self._message_expiries = []
        self._membership_expiries = []
        self._memberships = 0
        self._groups_of = {}
