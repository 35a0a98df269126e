from __future__ import annotations

import asyncio
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.home.config import AgencyLimits
from gateway.ingress.limits import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limits(rate: float, burst: int) -> Callable[[str], AgencyLimits]:
    return lambda _agency: AgencyLimits(rate_per_s=rate, burst=burst)


def test_a_zero_rate_is_unlimited_and_keeps_no_bucket() -> None:
    limiter = RateLimiter(limits(0.0, 1), clock=FakeClock())
    assert all(limiter.try_take("cn.port.sh") == 0.0 for _ in range(1000))
    assert limiter.bucket_count == 0


def test_a_burst_is_allowed_then_the_wait_is_until_the_next_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits(2.0, 3), clock=clock)
    assert [limiter.try_take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_take("a") == 0.5
    clock.now += 0.25
    assert limiter.try_take("a") == 0.25
    clock.now += 0.25
    assert limiter.try_take("a") == 0.0
    assert limiter.try_take("a") == 0.5


def test_agencies_have_their_own_buckets() -> None:
    limiter = RateLimiter(limits(1.0, 1), clock=FakeClock())
    assert limiter.try_take("a") == 0.0
    assert limiter.try_take("a") > 0.0
    assert limiter.try_take("b") == 0.0


def test_a_bucket_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits(10.0, 2), clock=clock)
    limiter.try_take("a")
    clock.now += 3600
    assert [limiter.try_take("a") for _ in range(3)][-1] > 0.0


def test_changed_limits_apply_to_the_next_take() -> None:
    clock = FakeClock()
    current = {"limits": AgencyLimits(rate_per_s=1.0, burst=5)}
    limiter = RateLimiter(lambda _: current["limits"], clock=clock)
    limiter.try_take("a")
    current["limits"] = AgencyLimits(rate_per_s=1.0, burst=1)
    assert limiter.try_take("a") == 0.0
    assert limiter.try_take("a") == 1.0


def test_take_waits_until_a_token_is_there() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits(4.0, 1), clock=clock, sleep=clock.sleep)

    async def run() -> None:
        for _ in range(3):
            await limiter.take("a")

    asyncio.run(run())
    assert clock.slept == [0.25, 0.25]
    assert clock.now == 1000.5


def test_take_sleeps_on_the_event_loop_by_default() -> None:
    limiter = RateLimiter(limits(200.0, 1))

    async def run() -> None:
        await limiter.take("a")
        await limiter.take("a")

    asyncio.run(run())


def test_full_buckets_are_dropped_when_too_many_agencies_have_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits(1.0, 1), clock=clock, max_buckets=3)
    for agency in ("a", "b", "c"):
        limiter.try_take(agency)
    limiter.try_take("d")
    assert limiter.bucket_count == 4  # a, b, c still empty: nothing to drop
    clock.now += 1.0
    limiter.try_take("e")
    assert limiter.bucket_count == 1
    assert limiter.try_take("e") > 0.0  # its own bucket survived the pruning


steps = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), st.integers(0, 20)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(min_value=0.01, max_value=1000.0), burst=st.integers(1, 50), steps=steps)
def test_never_more_than_burst_plus_rate_times_elapsed(
        rate: float, burst: int, steps: list[tuple[float, int]]) -> None:
    clock = FakeClock()
    start = clock.now
    limiter = RateLimiter(limits(rate, burst), clock=clock)
    allowed = 0
    for advance, takes in steps:
        clock.now += advance
        for _ in range(takes):
            wait = limiter.try_take("a")
            assert wait >= 0.0
            allowed += wait == 0.0
    assert allowed <= burst + rate * (clock.now - start) + 1e-6


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(min_value=0.01, max_value=1000.0), burst=st.integers(1, 50), steps=steps)
def test_waiting_the_answered_time_always_yields_a_token(
        rate: float, burst: int, steps: list[tuple[float, int]]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits(rate, burst), clock=clock)
    for advance, takes in steps:
        clock.now += advance
        for _ in range(takes):
            wait = limiter.try_take("a")
            if wait > 0.0:
                clock.now += wait
                assert limiter.try_take("a") == 0.0
