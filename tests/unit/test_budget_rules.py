"""The budget rules without servers: what overshoots a cap, a reservation's price, the start-up
check for unpriced models, and giving rate units back."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.limits.budget import BudgetCaps, BudgetUse, Reservation, Shortfall, shortfall
from graphs.limits.ratelimit import InMemoryRateLimiter
from graphs.model.pricing import PriceTable
from graphs.route_services import build_services
from graphs.routes import RouteLimits
from graphs.service import warn_small_token_caps
from graphs.settings import Settings
from serving.startup_checks import budget_problem, reservation_problem
from tests.clock import NOV_26_2025, SetClock

WANTED = Reservation("p", tokens=100, nano_usd=5_000, route="capped")


def test_a_reservation_fits_until_use_and_held_reservations_reach_the_cap() -> None:
    caps = BudgetCaps(tokens_per_minute=300)
    assert shortfall(BudgetUse(tokens_this_minute=100, held_tokens=100), caps, WANTED) is None
    assert shortfall(BudgetUse(tokens_this_minute=100, held_tokens=101), caps, WANTED) == (
        Shortfall("tokens", settled_alone=False)
    )
    assert shortfall(BudgetUse(tokens_this_minute=201), caps, WANTED) == Shortfall(
        "tokens", settled_alone=True
    )


def test_the_route_cap_counts_the_route_and_the_spend_cap_nano_dollars() -> None:
    route_caps = BudgetCaps(route_tokens_per_minute=150)
    use = BudgetUse(tokens_this_minute=10_000, route_tokens_this_minute=40, held_route_tokens=20)
    assert shortfall(use, route_caps, WANTED) == Shortfall("route_tokens", settled_alone=False)
    unrouted = Reservation("p", tokens=100, nano_usd=5_000)
    assert shortfall(use, route_caps, unrouted) is None  # a route without a cap of its own
    spend = BudgetCaps(daily_nano_usd=10_000)
    assert shortfall(BudgetUse(nano_usd_today=5_000.0), spend, WANTED) is None
    assert shortfall(BudgetUse(nano_usd_today=5_001.0), spend, WANTED) == Shortfall(
        "spend", settled_alone=True
    )


def test_a_reservation_travels_as_plain_data() -> None:
    assert Reservation.from_state(WANTED.as_state()) == WANTED
    assert Reservation.from_state(None) is None


def test_a_price_in_nano_dollars_is_rounded_up(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."m"]\ninput = 0.15\noutput = 0.6\n')
    table = PriceTable.load(prices)
    assert table.nano_usd("m", 1, 0) == 150
    assert table.nano_usd("m", 1_000_000, 1) == 150_000_000 + 600
    assert table.nano_usd("m", 0, 0) == 0
    assert table.nano_usd("unknown-model", 1, 1) is None


def test_a_spend_budget_with_an_unpriced_model_stops_the_start(tmp_path: Path) -> None:
    unpriced = Settings(
        openai_base_url="http://127.0.0.1:9/v1",
        llm_model="gpt-priced",
        llm_fallback_model="gpt-unpriced",
        daily_budget_usd=1,
    )
    problem = budget_problem(unpriced)
    assert problem is not None
    assert "openai:gpt-unpriced" in problem
    assert "PRICING_FILE" in problem
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."gpt-priced"]\ninput = 1\noutput = 2\n'
        '[models."gpt-unpriced"]\ninput = 1\noutput = 2\n'
    )
    assert budget_problem(unpriced.model_copy(update={"pricing_file": prices})) is None
    assert budget_problem(unpriced.model_copy(update={"daily_budget_usd": 0})) is None


def test_a_routes_unpriced_model_stops_a_budgeted_start(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[routes.other]\npath = "/other"\nmodel = "gpt-unpriced"\n')
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-priced"]\ninput = 1\noutput = 2\n')
    settings = Settings(
        openai_base_url="http://127.0.0.1:9/v1",
        llm_model="gpt-priced",
        pricing_file=prices,
        routes_file=routes,
        daily_budget_usd=1,
    )
    problem = budget_problem(settings)
    assert problem is not None
    assert "openai:gpt-unpriced" in problem


def test_a_missing_price_file_stops_the_start(tmp_path: Path) -> None:
    problem = budget_problem(Settings(pricing_file=tmp_path / "missing.toml"))
    assert problem is not None
    assert problem.startswith("PRICING_FILE")


def test_a_routes_token_cap_is_not_a_server_setting() -> None:
    limits = RouteLimits(tokens_per_minute=500, max_output_tokens=30)
    assert limits.setting_overrides() == {"max_output_tokens": 30}


async def test_refunded_units_leave_the_window() -> None:
    limiter = InMemoryRateLimiter(limit=3, window=60, clock=SetClock(NOV_26_2025))
    counted = await limiter.hit("p", cost=3)
    assert counted.hit is not None
    assert not (await limiter.hit("p")).allowed
    await limiter.refund("p", counted.hit, range(2, 4))
    assert (await limiter.hit("p", cost=2)).allowed
    assert not (await limiter.hit("p")).allowed


def test_a_reservation_outlives_the_longest_request_unless_told_otherwise() -> None:
    settings = Settings()  # 4 rounds of a 20-input batch, 5 at a time, of 10 s + 30 s
    assert settings.reservation_ttl == 4 * (10 + 30) + 30
    assert reservation_problem(settings) is None
    short = settings.model_copy(update={"budget_reservation_ttl": 160.0})
    problem = reservation_problem(short)
    assert problem is not None
    assert problem.startswith("BUDGET_RESERVATION_TTL=160")
    assert reservation_problem(short.model_copy(update={"budget_reservation_ttl": 161.0})) is None


def test_a_token_cap_below_one_requests_worst_case_is_warned_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for cap, warned in ((1000, True), (10_000, False)):
        caplog.clear()
        services = build_services(Settings(llm_model="demo", tokens_per_minute=cap), None)
        warn_small_token_caps("chat", services)
        assert ("TOKENS_PER_MINUTE=1000 is below" in caplog.text) is warned
