"""Client quotas' math (core/auth/quotas.py) against hand-computed values, and their store."""

from __future__ import annotations

import pytest

from ferrymq.core.auth.quota_store import (
    MATCH_ANY,
    MATCH_DEFAULT,
    MATCH_EXACT,
    InvalidQuota,
    QuotaStore,
    check_entity,
    check_value,
)
from ferrymq.core.auth.quotas import (
    FETCH,
    PRODUCE,
    REQUEST,
    ClientQuotas,
    QuotaConfig,
    SampledRate,
    entity,
    throttle_ms,
    user_name,
)

KB100 = 102_400.0


def quotas_with(ent, **values) -> ClientQuotas:
    q = ClientQuotas()
    q.alter(ent, values)
    return q


def test_first_burst_is_averaged_over_ten_windows():
    # 2 MiB at t=0 over 11 x 1 s: the window is padded to 10 000 ms, rate 209 715.2 B/s;
    # throttle = (209715.2 - 102400) / 102400 * 10000 = 10 480 ms
    q = quotas_with(entity(user="alice"), producer_byte_rate=KB100)
    assert q.record(PRODUCE, "alice", "c1", 2 * 1024 * 1024, 0) == 10_480


def test_within_quota_then_just_over():
    q = quotas_with(entity(user="alice"), producer_byte_rate=KB100)
    assert q.record(PRODUCE, "alice", "c1", 1_000_000, 0) == 0  # 100 000 B/s
    # t=500: 1.1e6 bytes over 500 + 10 000 ms = 104 761.9 B/s; (2361.9 / 102400) * 10500 = 242.19
    assert q.record(PRODUCE, "alice", "c1", 100_000, 500) == 242


def test_samples_expire_after_the_whole_window():
    q = quotas_with(entity(user="alice"), producer_byte_rate=KB100)
    assert q.record(PRODUCE, "alice", "c1", 5_000_000, 0) > 0
    # 11 000 ms after the last event every sample is obsolete: the rate starts again
    assert q.record(PRODUCE, "alice", "c1", 1000, 11_000) == 0


def test_rate_over_advancing_windows():
    rate = SampledRate(QuotaConfig(samples=3, window_ms=1000))
    rate.record(300, 0)
    rate.record(300, 1000)  # a second sample
    rate.record(300, 2500)  # a third
    # oldest starts at 0: 2500 ms elapsed, 2 full windows = samples-1, no padding
    assert rate.window_ms(2500) == 2500
    assert rate.measure(2500) == pytest.approx(900 / 2.5)
    # at 3000 the first sample (last event 0) is 3000 old = 3 windows: reset to start at 3000
    assert rate.window_ms(3000) == 2000
    assert rate.measure(3000) == pytest.approx(600 / 2.0)


def test_throttle_formula_rounds_like_java():
    assert throttle_ms(150.0, 100.0, 10_000) == 5000
    assert throttle_ms(100.5, 100.0, 10_000) == 50
    assert throttle_ms(100.0049, 100.0, 10_000) == 0


def test_request_percentage_throttle_is_capped_at_one_window():
    q = quotas_with(entity(client_id="busy"), request_percentage=10.0)
    # 5 s of handler time = 500 percent-seconds over 10 s: 50 % > 10 %: (40/10) * 10 000 = 40 000, capped 1000
    assert q.record(REQUEST, "ANONYMOUS", "busy", 500.0, 0) == 1000


def test_resolution_order_is_kafkas():
    q = ClientQuotas()
    # ClientQuotaManager's list, /config/clients/<default> up to /config/users/<user>/clients/<client-id>
    levels = [
        entity(default_client=True),
        entity(client_id="c"),
        entity(default_user=True),
        entity(default_user=True, default_client=True),
        entity(default_user=True, client_id="c"),
        entity(user="u"),
        entity(user="u", default_client=True),
        entity(user="u", client_id="c"),
    ]
    # set from least to most specific; after each, the newest one wins; its rate key is Kafka's metric tags
    expected = [
        (None, "c"),
        (None, "c"),
        ("u", None),
        ("u", "c"),
        ("u", "c"),
        ("u", None),
        ("u", "c"),
        ("u", "c"),
    ]
    for i, (ent, tags) in enumerate(zip(levels, expected, strict=True)):
        q.alter(ent, {PRODUCE: float(i + 1)})
        assert q.resolve(PRODUCE, "u", "c") == (*tags, float(i + 1)), ent
    # a kind is resolved on its own: only a default client sets the fetch rate
    q.alter(entity(default_client=True), {FETCH: 7.0})
    assert q.resolve(FETCH, "u", "c") == (None, "c", 7.0)
    assert q.resolve(REQUEST, "u", "c") is None


def test_clients_of_one_user_share_its_rate():
    q = quotas_with(entity(user="alice"), producer_byte_rate=KB100)
    assert q.record(PRODUCE, "alice", "a", 1_000_000, 0) == 0
    assert q.record(PRODUCE, "alice", "b", 100_000, 500) == 242  # the same rate as above
    assert q.record(PRODUCE, "bob", "b", 100_000, 500) == 0  # bob has no quota


def test_unrecord_and_max_in_window():
    q = quotas_with(entity(client_id="c"), consumer_byte_rate=KB100)
    assert q.max_in_window(FETCH, "ANONYMOUS", "c") == KB100 * 10
    assert q.max_in_window(PRODUCE, "ANONYMOUS", "c") is None
    assert q.record(FETCH, "ANONYMOUS", "c", 2_000_000, 0) > 0
    q.unrecord(FETCH, "ANONYMOUS", "c", 2_000_000, 0)
    assert q.record(FETCH, "ANONYMOUS", "c", 1, 1) == 0


def test_no_quota_no_work():
    q = ClientQuotas()
    assert q.record(PRODUCE, "x", "y", 10**12, 0) == 0
    assert user_name("User:alice") == "alice"


def test_store_validates_persists_and_filters(tmp_path):
    path = tmp_path / "quotas.json"
    store = QuotaStore(path, ClientQuotas())
    with pytest.raises(InvalidQuota):
        check_entity([("ip", "1.2.3.4")])
    with pytest.raises(InvalidQuota):
        check_entity([("user", "a"), ("user", "b")])
    with pytest.raises(InvalidQuota):
        check_value("producer_byte_rate", -1)
    with pytest.raises(InvalidQuota):
        check_value("producer_byte_rate", 1.5)
    with pytest.raises(InvalidQuota):
        check_value("bogus", 1)
    alice = check_entity([("user", "alice")])
    alice_c = check_entity([("user", "alice"), ("client-id", "c")])
    default_user = check_entity([("user", None)])
    store.alter([(alice, {PRODUCE: 100.0})], validate_only=True)
    assert not path.exists()
    store.alter(
        [(alice, {PRODUCE: 100.0, FETCH: 200.0}), (alice_c, {REQUEST: 50.0}), (default_user, {FETCH: 1.0})]
    )
    store.alter([(alice, {FETCH: None})])
    again = QuotaStore(path, ClientQuotas())
    assert again.quotas.entries() == {
        alice: {PRODUCE: 100.0},
        alice_c: {REQUEST: 50.0},
        default_user: {FETCH: 1.0},
    }
    assert set(again.describe([("user", MATCH_EXACT, "alice")], strict=True)) == {alice}
    assert set(again.describe([("user", MATCH_EXACT, "alice")], strict=False)) == {alice, alice_c}
    assert set(again.describe([("user", MATCH_DEFAULT, None)], strict=False)) == {default_user}
    assert set(again.describe([("user", MATCH_ANY, None)], strict=True)) == {alice, default_user}
    assert set(again.describe([], strict=False)) == {alice, alice_c, default_user}
    store.alter([(alice_c, {REQUEST: None})])
    assert alice_c not in QuotaStore(path, ClientQuotas()).quotas.entries()
