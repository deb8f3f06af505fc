"""Redis queue store: production backend. Each operation is one Lua script, one round trip.

Keys of event N share the hash tag `{evt:N}` so each event's keys live in one
Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from ..protocol import FanState
from . import base
from .base import (
    MAX_SKIPS_PER_ADMIT,
    RATE_TIME_CONSTANT,
    BaseQueueStore,
    BatchResult,
    Place,
    Popped,
    SessionCheck,
    Snapshot,
)

logger = logging.getLogger(__name__)

# Fans copied per step of `freeze_prequeue` (one script: about a millisecond of Redis per 1,000 fans; Lua's
# `unpack` takes at most 8,000 values) and read per step of the record (`frozen_prequeue_slice`).
FREEZE_CHUNK = 2_000

# The KEYS of every script, in order: (the name scripts use, the key's suffix in Redis).
_KEYS = (
    ("waiting", "waiting"),  # sorted set: user -> score (lower goes first)
    ("tickets", "ticket"),  # hash: user -> ticket
    ("states", "state"),  # hash: user -> FanState
    ("gone", "gone"),  # hash: user -> when their socket closed (the abandon grace period runs)
    ("pending", "pending"),  # hash: user -> score, popped and not yet confirmed
    ("meta", "meta"),  # hash: seq, served, totals, rate bucket, observed rate
    ("conn", "conn"),  # hash: user -> their current socket
    ("ids", "id"),  # hash: user -> place id (base.new_place_id)
)

# Every script starts here: its keys by name, and the one way to drop a fan (leave, forget, abandoned).
_PROLOGUE = f"""
local {", ".join(name for name, _ in _KEYS)} = {", ".join(f"KEYS[{i}]" for i in range(1, len(_KEYS) + 1))}
local function drop(user)
  redis.call('HDEL', tickets, user)
  redis.call('HDEL', states, user)
  redis.call('HDEL', gone, user)
  redis.call('HDEL', conn, user)
  redis.call('HDEL', ids, user)
end
"""


def _script(body: str) -> str:
    return _PROLOGUE + body


def _place_tail(extra: str = "") -> str:
    """The reply every place-returning script ends with (`RedisQueueStore._to_place`), plus `extra` values."""
    return f"""
local rank = -1
if st == '{FanState.WAITING}' then rank = redis.call('ZRANK', waiting, user) end
local stats = redis.call('HMGET', meta, 'served', 'rate', 'rate_weight', 'tokens')
return {{st, redis.call('HGET', tickets, user), rank, redis.call('ZCARD', waiting), stats[1] or '0', created,
        stats[2] or '0', stats[3] or '0', stats[4] or '', redis.call('HGET', ids, user) or ''{extra}}}
"""


_PLACE_TAIL = _place_tail()

_JOIN_BODY = f"""
local user = ARGV[1]
local st = redis.call('HGET', states, user)
local created = 0
if not st then
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local score = seq
  if ARGV[2] ~= '' then score = ARGV[2] end
  redis.call('ZADD', waiting, score, user)
  redis.call('HSET', tickets, user, seq)
  redis.call('HSET', ids, user, ARGV[3])
  redis.call('HSET', states, user, '{FanState.WAITING}')
  st = '{FanState.WAITING}'
  created = 1
end
redis.call('HDEL', gone, user)
"""

JOIN = _script(_JOIN_BODY + _PLACE_TAIL)

# The socket's join: JOIN and MARK_CONNECTED in one round trip, answering with the socket it replaced.
JOIN_CONNECTED = _script(_JOIN_BODY + """
local previous = redis.call('HGET', conn, user) or ''
redis.call('HSET', conn, user, ARGV[4])
""" + _place_tail(", previous"))

PLACE = _script("""
local user = ARGV[1]
local st = redis.call('HGET', states, user)
if not st then return false end
local created = 0
""" + _PLACE_TAIL)

LEAVE = _script(f"""
local user = ARGV[1]
if redis.call('HGET', states, user) ~= '{FanState.WAITING}' then return 0 end
redis.call('ZREM', waiting, user)
drop(user)
return 1
""")

FORGET = _script(f"""
local user = ARGV[1]
if redis.call('HGET', states, user) ~= '{FanState.ADMITTED}' then return 0 end
if redis.call('HGET', ids, user) ~= ARGV[2] then return 0 end
drop(user)
return 1
""")

MARK_CONNECTED = _script("""
local previous = redis.call('HGET', conn, ARGV[1]) or ''
redis.call('HSET', conn, ARGV[1], ARGV[2])
redis.call('HDEL', gone, ARGV[1])
return previous
""")

MARK_DISCONNECTED = _script("""
if redis.call('HEXISTS', states, ARGV[1]) == 1 and redis.call('HGET', conn, ARGV[1]) == ARGV[2] then
  redis.call('HSET', gone, ARGV[1], ARGV[3])
  redis.call('HDEL', conn, ARGV[1])
end
return 0
""")

ADMIT_BATCH = _script(f"""
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local abandon_before = tonumber(ARGV[5])
local max_skips = tonumber(ARGV[6])
local tau = tonumber(ARGV[7])
local random_draw = ARGV[8] ~= ''
if random_draw then math.randomseed(tonumber(ARGV[8])) end
local tokens = tonumber(redis.call('HGET', meta, 'tokens') or ARGV[4])
local tokens_at = tonumber(redis.call('HGET', meta, 'tokens_at') or ARGV[1])
tokens = math.min(burst, tokens + math.max(0, now - tokens_at) * rate)
local demand = redis.call('ZCARD', waiting) > 0
local want = math.max(0, math.min(math.floor(tokens + 1e-9), limit))
local out = {{}}
local n = 0
local skipped = 0
local served = 0
while n < want and skipped < max_skips * (want + 1) do
  local heads
  if random_draw then
    local size = redis.call('ZCARD', waiting)
    if size == 0 then break end
    local rank = math.random(size) - 1
    heads = redis.call('ZRANGE', waiting, rank, rank, 'WITHSCORES')
    redis.call('ZREM', waiting, heads[1])
  else
    heads = redis.call('ZPOPMIN', waiting, want - n)
  end
  if #heads == 0 then break end
  local users = {{}}
  for i = 1, #heads, 2 do users[#users + 1] = heads[i] end
  local gones = redis.call('HMGET', gone, unpack(users))
  local numbers = redis.call('HMGET', tickets, unpack(users))
  local place_ids = redis.call('HMGET', ids, unpack(users))
  for j = 1, #users do
    local user = users[j]
    served = served + 1
    if gones[j] and tonumber(gones[j]) < abandon_before then
      drop(user)
      skipped = skipped + 1
    else
      redis.call('HSET', states, user, '{FanState.PENDING}')
      redis.call('HSET', pending, user, heads[2 * j])
      n = n + 1
      out[#out + 1] = user
      out[#out + 1] = numbers[j]
      out[#out + 1] = heads[2 * j]
      out[#out + 1] = place_ids[j] or ''
    end
  end
end
tokens = tokens - n
redis.call('HSET', meta, 'tokens', string.format('%.17g', tokens), 'tokens_at', ARGV[1])
local served_total = redis.call('HINCRBY', meta, 'served', served)
redis.call('HINCRBY', meta, 'admitted', n)
redis.call('HINCRBY', meta, 'abandoned', skipped)
if demand then
  local rate_at = tonumber(redis.call('HGET', meta, 'rate_at') or '0')
  local observed = tonumber(redis.call('HGET', meta, 'rate') or '0')
  local weight = tonumber(redis.call('HGET', meta, 'rate_weight') or '0')
  local dt = 1.0
  if rate_at > 0 then dt = now - rate_at end
  dt = math.min(math.max(dt, 0.001), tau)
  local step = 1 - math.exp(-dt / tau)
  observed = observed + step * (n / dt - observed)
  weight = weight + step * (1 - weight)
  redis.call('HSET', meta, 'rate', string.format('%.17g', observed), 'rate_weight', string.format('%.17g', weight),
             'rate_at', ARGV[1])
end
return {{out, skipped, redis.call('ZCARD', waiting), served_total}}
""")

CONFIRM = _script(f"""
for i = 1, #ARGV do
  if redis.call('HDEL', pending, ARGV[i]) == 1 then
    redis.call('HSET', states, ARGV[i], '{FanState.ADMITTED}')
  end
end
return 0
""")

REQUEUE = _script(f"""
for i = 1, #ARGV do
  local score = redis.call('HGET', pending, ARGV[i])
  if score then
    redis.call('ZADD', waiting, score, ARGV[i])
    redis.call('HSET', states, ARGV[i], '{FanState.WAITING}')
    redis.call('HDEL', pending, ARGV[i])
    redis.call('HINCRBY', meta, 'served', -1)
    redis.call('HINCRBY', meta, 'admitted', -1)
  end
end
return 0
""")

SNAPSHOT = _script("""
local popped = redis.call('HGETALL', pending)
local numbers, place_ids = {}, {}
for i = 1, #popped, 2 do
  numbers[#numbers + 1] = redis.call('HGET', tickets, popped[i])
  place_ids[#place_ids + 1] = redis.call('HGET', ids, popped[i]) or ''
end
return {redis.call('ZCARD', waiting),
        redis.call('HMGET', meta, 'served', 'seq', 'admitted', 'abandoned', 'rate', 'rate_weight', 'tokens'),
        popped, numbers, place_ids}
""")

# One step of `freeze_prequeue` (KEYS: waiting, tickets, drawn, drawn tickets; ARGV: lowest score, count): the
# next `count` pre-queue fans from that score on (inclusive: a step re-reads the previous step's last fan, so
# fans of equal keys are not skipped; ZADD and HSET of the same values change nothing) copied with their keys
# and tickets. Returns how many were read and the last one's score.
FREEZE_STEP = """
local found = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '(1', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
if #found == 0 then return {0, ''} end
local users = {}
for i = 1, #found, 2 do users[#users + 1] = found[i] end
local tickets = redis.call('HMGET', KEYS[2], unpack(users))
local scored, numbered = {}, {}
for i, user in ipairs(users) do
  if tickets[i] then
    scored[#scored + 1] = found[2 * i]; scored[#scored + 1] = user
    numbered[#numbered + 1] = user; numbered[#numbered + 1] = tickets[i]
  end
end
if #scored > 0 then
  redis.call('ZADD', KEYS[3], unpack(scored))
  redis.call('HSET', KEYS[4], unpack(numbered))
end
return {#users, found[#found]}
"""

RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# The gate's sessions (KEYS: ended, seen), apart from the queue's keys (a reset keeps them). `ended`: sorted set
# session -> its hard end; `seen`: sorted set sliding session -> last activity. Each pruned by score as it goes.
END_SESSION = """
local now, untl = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if untl > now then redis.call('ZADD', KEYS[1], untl, ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
"""

CHECK_SESSION = f"""
local session, now, issued, untl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local ended = redis.call('ZSCORE', KEYS[1], session)
if ended and tonumber(ended) > now then return '{SessionCheck.ENDED}' end
if ARGV[4] == '' then return '{SessionCheck.LIVE}' end
local idle = tonumber(ARGV[4])
local last = tonumber(redis.call('ZSCORE', KEYS[2], session) or issued)
if last < issued then last = issued end
if now > math.min(last + idle, untl) then
  redis.call('ZADD', KEYS[1], untl, session)
  redis.call('ZREM', KEYS[2], session)
  return '{SessionCheck.IDLE}'
end
redis.call('ZADD', KEYS[2], 'GT', now, session)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - idle))
return '{SessionCheck.LIVE}'
"""


class _BlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool):
    """The Sentinel master's pool for the socket path, blocking as the plain one is: a join past its size waits."""


@dataclass(frozen=True)
class RedisServers:
    """Where the store's Redis is (settings: qms_project/redis_config.py): one server at `url`, a master that
    `sentinels` follow as `sentinel_master`, or a Redis Cluster that `url` is a node of (`cluster`)."""

    url: str = ""
    sentinels: tuple = ()
    sentinel_master: str = ""
    db: int = 0
    password: str = ""
    sentinel_password: str = ""
    cluster: bool = False
    max_connections: int = 200

    def sync_client(self) -> redis.Redis | redis.RedisCluster:
        common = {"decode_responses": True, "health_check_interval": 30}
        if self.cluster:
            return redis.RedisCluster.from_url(self.url, max_connections=self.max_connections, **common)
        if self.sentinels:
            manager = redis.sentinel.Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs,
                                              socket_timeout=2)
            return manager.master_for(self.sentinel_master, db=self.db, password=self.password or None,
                                      max_connections=self.max_connections, **common)
        return redis.Redis.from_url(self.url, max_connections=self.max_connections, **common)

    def async_client(self) -> redis.asyncio.Redis | redis.asyncio.RedisCluster:
        common = {"decode_responses": True, "health_check_interval": 30}
        if self.cluster:
            return redis.asyncio.RedisCluster.from_url(self.url, max_connections=self.max_connections, **common)
        # Blocking: in a storm, a join past the pool's size waits for a connection instead of failing.
        blocking = {"max_connections": self.max_connections, "timeout": 30, **common}
        if self.sentinels:
            manager = redis.asyncio.sentinel.Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs,
                                                      socket_timeout=2)
            return manager.master_for(self.sentinel_master, connection_pool_class=_BlockingSentinelPool,
                                      db=self.db, password=self.password or None, **blocking)
        return redis.asyncio.Redis(connection_pool=redis.asyncio.BlockingConnectionPool.from_url(self.url, **blocking))

    @property
    def _sentinel_kwargs(self) -> dict:
        return {"password": self.sentinel_password, "socket_timeout": 2} if self.sentinel_password else {
            "socket_timeout": 2}


class RedisQueueStore(BaseQueueStore):
    def __init__(self, url: str = "", prefix: str = "qms", max_connections: int = 200, *, sentinels=(),
                 sentinel_master: str = "", db: int = 0, password: str = "", sentinel_password: str = "",
                 cluster: bool = False, wait_replicas: int = 0, wait_timeout_ms: int = 100, **_options):
        self.prefix = prefix
        self.servers = RedisServers(url, tuple(tuple(pair) for pair in sentinels), sentinel_master, int(db),
                                    password, sentinel_password, bool(cluster), max_connections)
        # Joins and ticks answer once this many replicas hold their writes (or the timeout passed): what a
        # failover may lose (docs/RELIABILITY.md). A Cluster's replicas are its own business: no WAIT there.
        self.wait_replicas = 0 if cluster else int(wait_replicas)
        self.wait_timeout_ms = int(wait_timeout_ms)
        # The socket path's client (redis.asyncio), one per event loop: its connections belong to the loop
        # that opened them (Daphne has one; tests run several).
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.client = self.servers.sync_client()
        register = self.client.register_script
        self._join = register(JOIN)
        self._place_script = register(PLACE)
        self._leave = register(LEAVE)
        self._forget = register(FORGET)
        self._mark_connected = register(MARK_CONNECTED)
        self._mark_disconnected = register(MARK_DISCONNECTED)
        self._admit_batch = register(ADMIT_BATCH)
        self._confirm = register(CONFIRM)
        self._requeue = register(REQUEUE)
        self._snapshot = register(SNAPSHOT)
        self._release_lease = register(RELEASE_LEASE)
        self._freeze_step = register(FREEZE_STEP)
        self._end_session = register(END_SESSION)
        self._check_session = register(CHECK_SESSION)

    def keys(self, event_id: int) -> list[str]:
        return [f"{self.prefix}:{{evt:{event_id}}}:{suffix}" for _, suffix in _KEYS]

    def _drawn_keys(self, event_id: int) -> list[str]:
        """The frozen draw, apart from the queue's keys (a reset keeps it): sorted set user -> key, hash user ->
        ticket, and a hash with when and how many."""
        return [f"{self.prefix}:{{evt:{event_id}}}:drawn:{suffix}" for suffix in ("order", "ticket", "meta")]

    def _lease_key(self, event_id: int) -> str:
        return f"{self.prefix}:{{evt:{event_id}}}:lease"

    @staticmethod
    def _to_place(reply) -> Place | None:
        if not reply:
            return None
        state, ticket, rank, waiting, served, created, rate, weight, tokens, place_id = reply
        return Place(state=FanState(state), ticket=int(ticket), position=int(rank) + 1 if int(rank) >= 0 else None,
                     waiting=int(waiting), served=int(served), created=bool(created), observed_rate=float(rate),
                     rate_weight=float(weight), bucket_tokens=float(tokens) if tokens else None, place_id=place_id)

    def join(self, event_id, user_id, *, prequeue_key, now):
        key = "" if prequeue_key is None else repr(float(prequeue_key))
        return self._to_place(self._replicated(self._join, self.keys(event_id), [user_id, key, base.new_place_id()]))

    def place(self, event_id, user_id):
        return self._to_place(self._place_script(keys=self.keys(event_id), args=[user_id]))

    def leave(self, event_id, user_id):
        return bool(self._leave(keys=self.keys(event_id), args=[user_id]))

    def forget(self, event_id, user_id, place_id):
        return bool(self._forget(keys=self.keys(event_id), args=[user_id, place_id]))

    def mark_connected(self, event_id, user_id, connection):
        previous = self._mark_connected(keys=self.keys(event_id), args=[user_id, connection])
        return previous if previous and previous != connection else None

    def mark_disconnected(self, event_id, user_id, connection, now):
        self._mark_disconnected(keys=self.keys(event_id), args=[user_id, connection, repr(float(now))])

    def connections(self, event_id, user_ids):
        if not user_ids:
            return {}
        sockets = self.client.hmget(self.keys(event_id)[6], list(user_ids))
        return {user: socket for user, socket in zip(user_ids, sockets, strict=True) if socket}

    def _replicated(self, script, keys: list[str], args: list):
        """Run a write script; with `wait_replicas`, answer once replicas hold its writes (WAIT, one round trip)."""
        if not self.wait_replicas:
            return script(keys=keys, args=args)
        with self.client.pipeline(transaction=False) as pipe:
            script(keys=keys, args=args, client=pipe)
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            reply, acknowledged = pipe.execute()
        self._count_unreplicated(acknowledged)
        return reply

    async def _areplicated(self, name: str, keys: list[str], args: list):
        """`_replicated` on the socket path's client."""
        client, scripts = self._async_scripts()
        if not self.wait_replicas:
            return await scripts[name](keys=keys, args=args)
        async with client.pipeline(transaction=False) as pipe:
            await scripts[name](keys=keys, args=args, client=pipe)
            pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            reply, acknowledged = await pipe.execute()
        self._count_unreplicated(acknowledged)
        return reply

    def _count_unreplicated(self, acknowledged: int) -> None:
        # Answered anyway: refusing the join would stop the sale whenever the replica is away, which is the
        # availability Sentinel is there to keep. The write is as safe as without WAIT; say so.
        if acknowledged < self.wait_replicas:
            logger.warning("Redis WAIT: %s of %s replicas acknowledged within %s ms: a failover now may lose "
                           "this write", acknowledged, self.wait_replicas, self.wait_timeout_ms)

    def _async_scripts(self) -> tuple:
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            client = self.servers.async_client()
            found = self._async[loop] = (client, {"join_connected": client.register_script(JOIN_CONNECTED),
                                                  "mark_disconnected": client.register_script(MARK_DISCONNECTED)})
        return found

    async def ajoin_connected(self, event_id, user_id, connection, *, prequeue_key, now):
        key = "" if prequeue_key is None else repr(float(prequeue_key))
        reply = await self._areplicated("join_connected", self.keys(event_id),
                                        [user_id, key, base.new_place_id(), connection])
        previous = reply[-1]
        return self._to_place(reply[:-1]), (previous if previous and previous != connection else None)

    async def amark_disconnected(self, event_id, user_id, connection, now):
        await self._async_scripts()[1]["mark_disconnected"](
            keys=self.keys(event_id), args=[user_id, connection, repr(float(now))])

    def admit_batch(self, event_id, *, limit, rate_per_second, burst, now, abandon_before, draw_seed=None):
        args = [repr(float(now)), int(limit), repr(float(rate_per_second)), repr(float(burst)),
                repr(float(abandon_before)), MAX_SKIPS_PER_ADMIT, RATE_TIME_CONSTANT,
                "" if draw_seed is None else int(draw_seed) % 2**31]
        flat, abandoned, waiting, served = self._replicated(self._admit_batch, self.keys(event_id), args)
        admitted = [
            Popped(user_id=int(flat[i]), ticket=int(flat[i + 1]), score=float(flat[i + 2]), place_id=flat[i + 3])
            for i in range(0, len(flat), 4)
        ]
        return BatchResult(admitted, int(abandoned), int(waiting), int(served))

    def freeze_prequeue(self, event_id, *, at):
        order, tickets, meta = self._drawn_keys(event_id)
        if (frozen := self.frozen_prequeue(event_id)) is not None:
            return frozen[1]
        self.client.delete(order, tickets)  # a copy cut short: made again (nobody was popped since)
        waiting, queue_tickets = self.keys(event_id)[:2]
        lowest = "-inf"
        while True:
            read, lowest = self._freeze_step(keys=[waiting, queue_tickets, order, tickets],
                                             args=[lowest, FREEZE_CHUNK])
            if int(read) < FREEZE_CHUNK:
                break
        size = self.client.zcard(order)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(meta, mapping={"at": repr(float(at)), "size": size})
            if self.wait_replicas:
                pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            pipe.execute()
        return size

    def frozen_prequeue(self, event_id):
        at, size = self.client.hmget(self._drawn_keys(event_id)[2], "at", "size")
        return None if size is None else (float(at), int(size))

    def frozen_prequeue_slice(self, event_id, start, count):
        order, tickets, _ = self._drawn_keys(event_id)
        users = self.client.zrange(order, start, start + count - 1)
        return [(int(user), int(ticket)) for user, ticket in zip(users, self.client.hmget(tickets, users) if users
                                                                  else [], strict=True)]

    def drop_frozen_prequeue(self, event_id):
        self.client.unlink(*self._drawn_keys(event_id)[:2])  # freed in Redis's background thread

    def confirm_admitted(self, event_id, user_ids):
        if user_ids:
            self._replicated(self._confirm, self.keys(event_id), list(user_ids))

    def requeue(self, event_id, user_ids):
        if user_ids:
            self._replicated(self._requeue, self.keys(event_id), list(user_ids))

    def snapshot(self, event_id):
        waiting, meta, pending, tickets, place_ids = self._snapshot(keys=self.keys(event_id))
        served, seq, admitted, abandoned, rate, weight, tokens = meta
        popped = [Popped(user_id=int(pending[i]), ticket=int(tickets[i // 2]), score=float(pending[i + 1]),
                         place_id=place_ids[i // 2]) for i in range(0, len(pending), 2)]
        return Snapshot(
            waiting=int(waiting),
            served=int(served or 0),
            joined_total=int(seq or 0),
            admitted_total=int(admitted or 0),
            abandoned_total=int(abandoned or 0),
            observed_rate=float(rate or 0.0),
            rate_weight=float(weight or 0.0),
            bucket_tokens=float(tokens) if tokens else None,
            pending={fan.user_id: fan for fan in popped},
        )

    def acquire_lease(self, event_id, owner, ttl):
        return bool(self.client.set(self._lease_key(event_id), owner, nx=True, px=max(1, int(ttl * 1000))))

    def release_lease(self, event_id, owner):
        self._release_lease(keys=[self._lease_key(event_id)], args=[owner])

    def reset(self, event_id):
        # Tickets keep counting up (a fan's new ticket reads as later than the old): keep seq and served.
        keys = self.keys(event_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*(key for key in keys if not key.endswith(":meta")), self._lease_key(event_id))
            pipe.hdel(keys[5], "tokens", "tokens_at", "rate", "rate_weight", "rate_at", "admitted", "abandoned")
            pipe.execute()

    def ping(self):
        return bool(self.client.ping())

    def _session_keys(self, event_id: int) -> list[str]:
        return [f"{self.prefix}:{{evt:{event_id}}}:gate:ended", f"{self.prefix}:{{evt:{event_id}}}:gate:seen"]

    def end_session(self, event_id, session, *, until, now):
        self._end_session(keys=self._session_keys(event_id), args=[session, repr(float(now)), repr(float(until))])

    def check_session(self, event_id, session, *, now, issued_at, idle_seconds, until):
        idle = "" if idle_seconds is None else repr(float(idle_seconds))
        return SessionCheck(self._check_session(keys=self._session_keys(event_id), args=[
            session, repr(float(now)), repr(float(issued_at)), idle, repr(float(until))]))

    def session_activity(self, event_id, since):
        seen = self.client.zrangebyscore(self._session_keys(event_id)[1], f"({float(since)!r}", "+inf",
                                         withscores=True)
        return dict(seen)
