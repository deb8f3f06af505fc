"""The queue store contract, run against every backend (memory, Redis on the real server, and a three-master
Redis Cluster: every script's keys must share one slot)."""

from __future__ import annotations

import asyncio

import pytest

from queues.protocol import FanState
from tests.threads import run_in_threads

store_backends = ["memory", "redis", "redis-cluster"]  # tests/conftest.py: the `store` fixture's backends here

WAITING, PENDING, ADMITTED = FanState.WAITING, FanState.PENDING, FanState.ADMITTED

EVENT = 7


def admit(store, limit=100, rate=1000.0, burst=1000.0, now=1000.0, abandon_before=0.0):
    return store.admit_batch(EVENT, limit=limit, rate_per_second=rate, burst=burst, now=now,
                             abandon_before=abandon_before)


def test_join_gives_increasing_tickets_and_exact_positions(store):
    places = [store.join(EVENT, user, prequeue_key=None, now=1.0) for user in (11, 12, 13)]
    assert [p.ticket for p in places] == [1, 2, 3]
    assert [p.position for p in places] == [1, 2, 3]
    assert all(p.created and p.state == WAITING for p in places)
    assert store.place(EVENT, 13).waiting == 3


def test_joining_twice_keeps_the_first_ticket(store):
    first = store.join(EVENT, 11, prequeue_key=None, now=1.0)
    store.join(EVENT, 12, prequeue_key=None, now=1.0)
    again = store.join(EVENT, 11, prequeue_key=None, now=2.0)
    assert (again.ticket, again.position, again.created) == (first.ticket, 1, False)


def test_concurrent_joins_of_one_user_make_one_ticket(store):
    results = run_in_threads(lambda _: store.join(EVENT, 5, prequeue_key=None, now=1.0), 16)
    assert {p.ticket for p in results} == {1}
    assert sum(p.created for p in results) == 1
    assert store.snapshot(EVENT).waiting == 1


def test_leave_removes_the_place_and_moves_others_up(store):
    for user in (1, 2, 3):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    assert store.leave(EVENT, 2) is True
    assert store.place(EVENT, 2) is None
    assert store.place(EVENT, 3).position == 2
    assert store.leave(EVENT, 2) is False


def test_place_of_unknown_user_is_none(store):
    assert store.place(EVENT, 999) is None


def test_prequeue_stands_in_front_of_later_joiners_in_key_order(store):
    store.join(EVENT, 1, prequeue_key=0.9, now=1.0)
    store.join(EVENT, 2, prequeue_key=0.1, now=1.0)
    store.join(EVENT, 3, prequeue_key=None, now=2.0)
    store.join(EVENT, 4, prequeue_key=0.5, now=1.0)
    assert [store.place(EVENT, u).position for u in (2, 4, 1, 3)] == [1, 2, 3, 4]


def test_admit_batch_pops_in_order_and_marks_pending(store):
    for user in range(1, 6):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    batch = admit(store, limit=3)
    assert [p.user_id for p in batch.admitted] == [1, 2, 3]
    assert [p.ticket for p in batch.admitted] == [1, 2, 3]
    assert (batch.waiting, batch.served) == (2, 3)
    assert store.place(EVENT, 1).state == PENDING
    assert store.place(EVENT, 4).position == 1


def test_confirm_makes_pending_admitted_and_join_keeps_it(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    admit(store)
    store.confirm_admitted(EVENT, [1])
    assert store.place(EVENT, 1).state == ADMITTED
    assert store.join(EVENT, 1, prequeue_key=None, now=2.0).state == ADMITTED
    assert store.snapshot(EVENT).pending == {}


def test_requeue_puts_pending_back_at_their_place(store):
    for user in (1, 2, 3):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    admit(store, limit=1)
    place_id = store.place(EVENT, 1).place_id
    assert {user: (fan.ticket, fan.score, fan.place_id) for user, fan in store.snapshot(EVENT).pending.items()} == {
        1: (1, 1.0, place_id)}
    store.requeue(EVENT, [1])
    assert store.place(EVENT, 1).position == 1
    snap = store.snapshot(EVENT)
    assert (snap.waiting, snap.served, snap.admitted_total, snap.pending) == (3, 0, 0, {})


def test_rate_budget_is_a_token_bucket(store):
    for user in range(1, 21):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    first = admit(store, rate=2.0, burst=4.0, now=100.0)
    assert len(first.admitted) == 4  # a full bucket
    assert len(admit(store, rate=2.0, burst=4.0, now=100.4).admitted) == 0  # 0.8 tokens
    assert len(admit(store, rate=2.0, burst=4.0, now=100.9).admitted) == 1  # 0.8 + 1.0 = 1.8
    assert len(admit(store, rate=2.0, burst=4.0, now=111.0).admitted) == 4  # capped at the burst


def test_capacity_limit_caps_the_batch(store):
    for user in range(1, 6):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    assert len(admit(store, limit=0).admitted) == 0
    assert len(admit(store, limit=2).admitted) == 2


def test_disconnected_past_grace_are_skipped_and_dropped(store):
    for user in (1, 2, 3):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    for user in (1, 2):
        store.mark_connected(EVENT, user, f"socket-{user}")
    store.mark_disconnected(EVENT, 1, "socket-1", now=10.0)
    store.mark_disconnected(EVENT, 2, "socket-2", now=50.0)
    batch = admit(store, limit=2, abandon_before=40.0)
    assert [p.user_id for p in batch.admitted] == [2, 3]
    assert batch.abandoned == 1
    assert store.place(EVENT, 1) is None
    assert store.snapshot(EVENT).abandoned_total == 1


def test_reconnecting_stops_the_grace_clock(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    store.mark_connected(EVENT, 1, "old")
    store.mark_disconnected(EVENT, 1, "old", now=10.0)
    store.mark_connected(EVENT, 1, "new")
    assert [p.user_id for p in admit(store, abandon_before=40.0).admitted] == [1]


def test_a_stale_socket_closing_late_does_not_start_the_grace_clock(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    store.mark_connected(EVENT, 1, "old")
    store.mark_connected(EVENT, 1, "new")  # a reload: the new socket registered first
    store.mark_disconnected(EVENT, 1, "old", now=10.0)
    assert [p.user_id for p in admit(store, abandon_before=40.0).admitted] == [1]


def test_rejoining_over_http_stops_the_grace_clock(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    store.mark_connected(EVENT, 1, "socket")
    store.mark_disconnected(EVENT, 1, "socket", now=10.0)
    store.join(EVENT, 1, prequeue_key=None, now=20.0)
    assert [p.user_id for p in admit(store, abandon_before=40.0).admitted] == [1]


def test_forget_only_drops_an_admitted_place(store):
    place_id = store.join(EVENT, 1, prequeue_key=None, now=1.0).place_id
    assert store.forget(EVENT, 1, place_id) is False  # still waiting
    admit(store)
    store.confirm_admitted(EVENT, [1])
    assert store.forget(EVENT, 1, "another-place") is False
    assert store.forget(EVENT, 1, place_id) is True
    again = store.join(EVENT, 1, prequeue_key=None, now=2.0)
    assert (again.ticket, again.state) == (2, WAITING) and again.place_id != place_id


def test_every_place_has_its_own_id_carried_by_its_pop(store):
    places = {user: store.join(EVENT, user, prequeue_key=None, now=1.0) for user in (1, 2)}
    assert len({place.place_id for place in places.values()}) == 2 and all(len(p.place_id) == 32
                                                                          for p in places.values())
    assert store.place(EVENT, 1).place_id == places[1].place_id  # stable while the place is held
    assert {fan.user_id: fan.place_id for fan in admit(store).admitted} == {u: p.place_id for u, p in places.items()}


def test_a_place_taken_again_after_a_reset_has_a_new_id(store):
    first = store.join(EVENT, 1, prequeue_key=None, now=1.0)
    store.reset(EVENT)
    assert store.join(EVENT, 1, prequeue_key=None, now=2.0).place_id != first.place_id


def test_place_reports_the_rate_budget_and_the_weight_of_the_observed_rate(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    before = store.place(EVENT, 1)
    assert (before.bucket_tokens, before.rate_weight) == (None, 0.0)  # no tick yet: nothing observed
    store.join(EVENT, 2, prequeue_key=None, now=1.0)
    admit(store, rate=2.0, burst=4.0, now=100.0)  # admits both: two of four tokens left
    after = store.place(EVENT, 1)
    assert after.bucket_tokens == pytest.approx(2.0)
    assert 0.0 < after.rate_weight < 0.1  # one second observed of a 30 s time constant
    assert store.snapshot(EVENT).rate_weight == pytest.approx(after.rate_weight)


def test_lease_is_exclusive_until_released(store):
    assert store.acquire_lease(EVENT, "a", 5.0) is True
    assert store.acquire_lease(EVENT, "b", 5.0) is False
    store.release_lease(EVENT, "b")  # not the owner: no effect
    assert store.acquire_lease(EVENT, "b", 5.0) is False
    store.release_lease(EVENT, "a")
    assert store.acquire_lease(EVENT, "b", 5.0) is True


def test_lease_expires(store):
    import time

    assert store.acquire_lease(EVENT, "a", 0.05) is True
    time.sleep(0.1)
    assert store.acquire_lease(EVENT, "b", 5.0) is True


def test_observed_rate_follows_admissions(store):
    for user in range(1, 200):
        store.join(EVENT, user, prequeue_key=None, now=1.0)
    for second in range(60):
        admit(store, rate=2.0, burst=2.0, now=1000.0 + second)
    assert store.snapshot(EVENT).observed_rate == pytest.approx(2.0, rel=0.3)


def test_reset_empties_the_queue_but_never_reuses_tickets(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    store.reset(EVENT)
    assert store.place(EVENT, 1) is None
    assert store.snapshot(EVENT).waiting == 0
    assert store.join(EVENT, 1, prequeue_key=None, now=2.0).ticket == 2


def test_events_are_independent(store):
    store.join(EVENT, 1, prequeue_key=None, now=1.0)
    assert store.place(EVENT + 1, 1) is None
    assert store.join(EVENT + 1, 1, prequeue_key=None, now=1.0).ticket == 1


def test_redis_keys_carry_the_event_hash_tag(redis_url, redis_prefix):
    from queues.store.redis import RedisQueueStore

    store = RedisQueueStore(url=redis_url, prefix=redis_prefix)
    store.join(42, 1, prequeue_key=None, now=1.0)
    keys = list(store.client.scan_iter(f"{redis_prefix}:*"))
    assert keys and all("{evt:42}" in key for key in keys)


def test_a_socket_join_queues_and_names_the_socket_it_replaced(store):
    """The socket path's join (queues/realtime/consumer.py): the place and the fan's previous socket, to be
    superseded, in one step."""
    place, replaced = asyncio.run(store.ajoin_connected(EVENT, 1, "phone", prequeue_key=None, now=1.0))
    assert (place.ticket, place.position, place.created, replaced) == (1, 1, True, None)
    again, replaced = asyncio.run(store.ajoin_connected(EVENT, 1, "laptop", prequeue_key=None, now=2.0))
    assert (again.ticket, again.created, replaced) == (1, False, "phone")
    assert asyncio.run(store.ajoin_connected(EVENT, 1, "laptop", prequeue_key=None, now=3.0))[1] is None
    assert store.connections(EVENT, [1, 2]) == {1: "laptop"}


def test_the_replaced_socket_closing_late_keeps_the_new_one(store):
    asyncio.run(store.ajoin_connected(EVENT, 1, "old", prequeue_key=None, now=1.0))
    asyncio.run(store.ajoin_connected(EVENT, 1, "new", prequeue_key=None, now=2.0))
    asyncio.run(store.amark_disconnected(EVENT, 1, "old", now=10.0))
    assert store.connections(EVENT, [1]) == {1: "new"}
    asyncio.run(store.amark_disconnected(EVENT, 1, "new", now=20.0))
    assert store.connections(EVENT, [1]) == {}
    assert admit(store, abandon_before=30.0).abandoned == 1  # the grace clock started at the last close


# --- the gate's sessions (queues/gate/) ---

LIVE, ENDED, IDLE = "live", "ended", "idle"


def check(store, session="s1", now=100.0, issued_at=100.0, idle=None, until=1000.0):
    return store.check_session(EVENT, session, now=now, issued_at=issued_at, idle_seconds=idle, until=until)


def test_a_fixed_session_is_live_until_ended_and_ended_until_its_hard_end(store):
    assert check(store, now=150.0) == LIVE
    store.end_session(EVENT, "s1", until=1000.0, now=160.0)
    assert check(store, now=170.0) == ENDED
    assert check(store, session="s2", now=170.0) == LIVE  # only that session
    assert store.check_session(EVENT + 1, "s1", now=170.0, issued_at=100.0, idle_seconds=None,
                               until=1000.0) == LIVE  # only in that event


def test_a_sliding_session_lives_by_activity_until_idle_then_stays_ended(store):
    assert check(store, now=105.0, idle=10.0) == LIVE
    assert check(store, now=114.0, idle=10.0) == LIVE  # 9 s after the last request
    assert check(store, now=123.0, idle=10.0) == LIVE
    assert check(store, now=134.0, idle=10.0) == IDLE  # 11 s after the last request
    assert check(store, now=135.0, idle=10.0) == ENDED


def test_a_sliding_session_is_idle_from_its_issue_if_never_seen(store):
    assert check(store, now=111.0, issued_at=100.0, idle=10.0) == IDLE


def test_a_sliding_session_ends_at_its_hard_cap_however_active(store):
    for now in range(101, 130, 5):
        assert check(store, now=float(now), idle=10.0, until=130.0) == LIVE
    assert check(store, now=130.5, idle=10.0, until=130.0) == IDLE


def test_session_activity_lists_sessions_seen_after_a_time(store):
    check(store, "a", now=105.0, idle=60.0)
    check(store, "b", now=110.0, idle=60.0)
    check(store, "a", now=120.0, idle=60.0)
    check(store, "fixed", now=121.0)  # a fixed session's activity is not recorded
    assert store.session_activity(EVENT, 108.0) == {"a": 120.0, "b": 110.0}
    assert store.session_activity(EVENT, 115.0) == {"a": 120.0}
    assert store.session_activity(EVENT + 1, 0.0) == {}


def test_an_ended_session_leaves_the_activity_and_a_reset_keeps_sessions(store):
    check(store, "a", now=105.0, idle=60.0)
    check(store, "b", now=105.0, idle=60.0)
    store.end_session(EVENT, "a", until=1000.0, now=106.0)
    store.reset(EVENT)
    assert store.session_activity(EVENT, 0.0) == {"b": 105.0}
    assert check(store, "a", now=107.0, idle=60.0) == ENDED


def test_sessions_are_forgotten_past_their_end(store):
    """Bounded memory: an idle session leaves the activity once idle, an ended one the ended set at its end."""
    check(store, "old", now=105.0, idle=10.0)
    store.end_session(EVENT, "gone", until=200.0, now=106.0)
    check(store, "new", now=300.0, issued_at=295.0, idle=10.0)  # a later request sweeps
    store.end_session(EVENT, "other", until=900.0, now=301.0)
    assert store.session_activity(EVENT, 0.0) == {"new": 300.0}


def test_redis_gate_sessions_are_pruned_and_carry_the_event_hash_tag(redis_url, redis_prefix):
    from queues.store.redis import RedisQueueStore

    store = RedisQueueStore(url=redis_url, prefix=redis_prefix)
    for n in range(50):
        store.check_session(42, f"s{n}", now=100.0 + n, issued_at=100.0 + n, idle_seconds=10.0, until=1000.0)
        store.end_session(42, f"e{n}", until=100.0 + n, now=100.0 + n)
    ended, seen = store._session_keys(42)
    assert store.client.zcard(seen) <= 11 and store.client.zcard(ended) <= 1
    keys = list(store.client.scan_iter(f"{redis_prefix}:*"))
    assert keys and all("{evt:42}" in key for key in keys)
