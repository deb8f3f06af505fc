"""Redis queue store: production backend. Each operation is one Lua script, one round trip.

Keys of event N share the hash tag `{evt:N}` so each event's keys live in one
Redis Cluster slot.
"""

from __future__ import annotations

import redis

from .base import BaseQueueStore, BatchResult, Place, Popped, Snapshot
from .memory import MAX_SKIPS_PER_ADMIT, RATE_TIME_CONSTANT

# KEYS of every script: waiting, ticket, state, gone, pending, meta, conn
_KEY_NAMES = ("waiting", "ticket", "state", "gone", "pending", "meta", "conn")

_PLACE_TAIL = """
local rank = -1
if st == 'waiting' then rank = redis.call('ZRANK', KEYS[1], user) end
return {st, redis.call('HGET', KEYS[2], user), rank, redis.call('ZCARD', KEYS[1]),
        redis.call('HGET', KEYS[6], 'served') or '0', created, redis.call('HGET', KEYS[6], 'rate') or '0'}
"""

JOIN = """
local user = ARGV[1]
local st = redis.call('HGET', KEYS[3], user)
local created = 0
if not st then
  local seq = redis.call('HINCRBY', KEYS[6], 'seq', 1)
  local score = seq
  if ARGV[2] ~= '' then score = ARGV[2] end
  redis.call('ZADD', KEYS[1], score, user)
  redis.call('HSET', KEYS[2], user, seq)
  redis.call('HSET', KEYS[3], user, 'waiting')
  st = 'waiting'
  created = 1
end
redis.call('HDEL', KEYS[4], user)
""" + _PLACE_TAIL

PLACE = """
local user = ARGV[1]
local st = redis.call('HGET', KEYS[3], user)
if not st then return false end
local created = 0
""" + _PLACE_TAIL

LEAVE = """
local user = ARGV[1]
if redis.call('HGET', KEYS[3], user) ~= 'waiting' then return 0 end
redis.call('ZREM', KEYS[1], user)
redis.call('HDEL', KEYS[2], user)
redis.call('HDEL', KEYS[3], user)
redis.call('HDEL', KEYS[4], user)
redis.call('HDEL', KEYS[7], user)
return 1
"""

FORGET = """
local user = ARGV[1]
if redis.call('HGET', KEYS[3], user) ~= 'admitted' then return 0 end
if redis.call('HGET', KEYS[2], user) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], user)
redis.call('HDEL', KEYS[3], user)
redis.call('HDEL', KEYS[4], user)
redis.call('HDEL', KEYS[7], user)
return 1
"""

MARK_CONNECTED = """
redis.call('HSET', KEYS[7], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[1])
return 0
"""

MARK_DISCONNECTED = """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 and redis.call('HGET', KEYS[7], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
  redis.call('HDEL', KEYS[7], ARGV[1])
end
return 0
"""

ADMIT_BATCH = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local abandon_before = tonumber(ARGV[5])
local max_skips = tonumber(ARGV[6])
local tau = tonumber(ARGV[7])
local random_draw = ARGV[8] ~= ''
if random_draw then math.randomseed(tonumber(ARGV[8])) end
local meta = KEYS[6]
local tokens = tonumber(redis.call('HGET', meta, 'tokens') or ARGV[4])
local tokens_at = tonumber(redis.call('HGET', meta, 'tokens_at') or ARGV[1])
tokens = math.min(burst, tokens + math.max(0, now - tokens_at) * rate)
local demand = redis.call('ZCARD', KEYS[1]) > 0
local want = math.max(0, math.min(math.floor(tokens + 1e-9), limit))
local out = {}
local n = 0
local skipped = 0
local served = 0
while n < want and skipped < max_skips * (want + 1) do
  local heads
  if random_draw then
    local size = redis.call('ZCARD', KEYS[1])
    if size == 0 then break end
    local rank = math.random(size) - 1
    heads = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
    redis.call('ZREM', KEYS[1], heads[1])
  else
    heads = redis.call('ZPOPMIN', KEYS[1], want - n)
  end
  if #heads == 0 then break end
  local users = {}
  for i = 1, #heads, 2 do users[#users + 1] = heads[i] end
  local gones = redis.call('HMGET', KEYS[4], unpack(users))
  local tickets = redis.call('HMGET', KEYS[2], unpack(users))
  for j = 1, #users do
    local user = users[j]
    served = served + 1
    if gones[j] and tonumber(gones[j]) < abandon_before then
      redis.call('HDEL', KEYS[2], user)
      redis.call('HDEL', KEYS[3], user)
      redis.call('HDEL', KEYS[4], user)
      redis.call('HDEL', KEYS[7], user)
      skipped = skipped + 1
    else
      redis.call('HSET', KEYS[3], user, 'pending')
      redis.call('HSET', KEYS[5], user, heads[2 * j])
      n = n + 1
      out[#out + 1] = user
      out[#out + 1] = tickets[j]
      out[#out + 1] = heads[2 * j]
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
  local dt = 1.0
  if rate_at > 0 then dt = now - rate_at end
  dt = math.min(math.max(dt, 0.001), tau)
  observed = observed + (1 - math.exp(-dt / tau)) * (n / dt - observed)
  redis.call('HSET', meta, 'rate', string.format('%.17g', observed), 'rate_at', ARGV[1])
end
return {out, skipped, redis.call('ZCARD', KEYS[1]), served_total}
"""

CONFIRM = """
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[5], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i], 'admitted')
  end
end
return 0
"""

REQUEUE = """
for i = 1, #ARGV do
  local score = redis.call('HGET', KEYS[5], ARGV[i])
  if score then
    redis.call('ZADD', KEYS[1], score, ARGV[i])
    redis.call('HSET', KEYS[3], ARGV[i], 'waiting')
    redis.call('HDEL', KEYS[5], ARGV[i])
    redis.call('HINCRBY', KEYS[6], 'served', -1)
    redis.call('HINCRBY', KEYS[6], 'admitted', -1)
  end
end
return 0
"""

SNAPSHOT = """
local pending = redis.call('HGETALL', KEYS[5])
local tickets = {}
for i = 1, #pending, 2 do
  tickets[#tickets + 1] = redis.call('HGET', KEYS[2], pending[i])
end
return {redis.call('ZCARD', KEYS[1]), redis.call('HMGET', KEYS[6], 'served', 'seq', 'admitted', 'abandoned', 'rate'),
        pending, tickets}
"""

RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisQueueStore(BaseQueueStore):
    def __init__(self, url: str, prefix: str = "qms", max_connections: int = 200, **_options):
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, decode_responses=True, max_connections=max_connections, health_check_interval=30
        )
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

    def keys(self, event_id: int) -> list[str]:
        return [f"{self.prefix}:{{evt:{event_id}}}:{name}" for name in _KEY_NAMES]

    def _lease_key(self, event_id: int) -> str:
        return f"{self.prefix}:{{evt:{event_id}}}:lease"

    @staticmethod
    def _to_place(reply) -> Place | None:
        if not reply:
            return None
        state, ticket, rank, waiting, served, created, rate = reply
        position = int(rank) + 1 if int(rank) >= 0 else None
        return Place(state, int(ticket), position, int(waiting), int(served), bool(created), float(rate))

    def join(self, event_id, user_id, *, prequeue_key, now):
        key = "" if prequeue_key is None else repr(float(prequeue_key))
        return self._to_place(self._join(keys=self.keys(event_id), args=[user_id, key]))

    def place(self, event_id, user_id):
        return self._to_place(self._place_script(keys=self.keys(event_id), args=[user_id]))

    def leave(self, event_id, user_id):
        return bool(self._leave(keys=self.keys(event_id), args=[user_id]))

    def forget(self, event_id, user_id, ticket):
        return bool(self._forget(keys=self.keys(event_id), args=[user_id, ticket]))

    def mark_connected(self, event_id, user_id, connection):
        self._mark_connected(keys=self.keys(event_id), args=[user_id, connection])

    def mark_disconnected(self, event_id, user_id, connection, now):
        self._mark_disconnected(keys=self.keys(event_id), args=[user_id, connection, repr(float(now))])

    def admit_batch(self, event_id, *, limit, rate_per_second, burst, now, abandon_before, draw_seed=None):
        args = [repr(float(now)), int(limit), repr(float(rate_per_second)), repr(float(burst)),
                repr(float(abandon_before)), MAX_SKIPS_PER_ADMIT, RATE_TIME_CONSTANT,
                "" if draw_seed is None else int(draw_seed) % 2**31]
        flat, abandoned, waiting, served = self._admit_batch(keys=self.keys(event_id), args=args)
        admitted = [
            Popped(int(flat[i]), int(flat[i + 1]), float(flat[i + 2])) for i in range(0, len(flat), 3)
        ]
        return BatchResult(admitted, int(abandoned), int(waiting), int(served))

    def confirm_admitted(self, event_id, user_ids):
        if user_ids:
            self._confirm(keys=self.keys(event_id), args=list(user_ids))

    def requeue(self, event_id, user_ids):
        if user_ids:
            self._requeue(keys=self.keys(event_id), args=list(user_ids))

    def snapshot(self, event_id):
        waiting, meta, pending, tickets = self._snapshot(keys=self.keys(event_id))
        served, seq, admitted, abandoned, rate = meta
        pending_map = {
            int(pending[i]): (int(tickets[i // 2]), float(pending[i + 1])) for i in range(0, len(pending), 2)
        }
        return Snapshot(
            waiting=int(waiting),
            served=int(served or 0),
            joined_total=int(seq or 0),
            admitted_total=int(admitted or 0),
            abandoned_total=int(abandoned or 0),
            observed_rate=float(rate or 0.0),
            pending=pending_map,
        )

    def acquire_lease(self, event_id, owner, ttl):
        return bool(self.client.set(self._lease_key(event_id), owner, nx=True, px=max(1, int(ttl * 1000))))

    def release_lease(self, event_id, owner):
        self._release_lease(keys=[self._lease_key(event_id)], args=[owner])

    def reset(self, event_id):
        # Tickets are never reused (the ledger keys admissions by ticket): keep seq and served.
        keys = self.keys(event_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*(key for key in keys if not key.endswith(":meta")), self._lease_key(event_id))
            pipe.hdel(keys[5], "tokens", "tokens_at", "rate", "rate_at", "admitted", "abandoned")
            pipe.execute()

    def ping(self):
        return bool(self.client.ping())
