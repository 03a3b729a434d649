"""Spend: the settings of budgets and prices, days in local time, learned prices, usage and its text."""

from __future__ import annotations

import pytest

from ccapi_suno_mcp.settings import Settings, SettingsError


def test_budgets_default_to_no_limit_with_new_apis_quota_unit_and_asking_only_over_budget() -> None:
    settings = Settings.from_env({})
    assert (settings.daily_budget_usd, settings.monthly_budget_usd) == (None, None)
    assert (settings.quota_per_usd, settings.confirm) == (500_000, "over_budget")


def test_budget_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CCAPI_SUNO_DAILY_BUDGET_USD": "0.10",
            "CCAPI_SUNO_MONTHLY_BUDGET_USD": " 5 ",
            "CCAPI_QUOTA_PER_USD": "1000000.0",
            "CCAPI_SUNO_CONFIRM": "Always",
        }
    )
    assert (settings.daily_budget_usd, settings.monthly_budget_usd) == (0.10, 5.0)
    assert (settings.quota_per_usd, settings.confirm) == (1_000_000, "always")
    assert Settings.from_env({"CCAPI_SUNO_DAILY_BUDGET_USD": "0"}).daily_budget_usd == 0.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CCAPI_SUNO_DAILY_BUDGET_USD", "ten dollars"),
        ("CCAPI_SUNO_DAILY_BUDGET_USD", "-1"),
        ("CCAPI_SUNO_MONTHLY_BUDGET_USD", "nan"),
        ("CCAPI_SUNO_MONTHLY_BUDGET_USD", "inf"),
        ("CCAPI_QUOTA_PER_USD", "0"),
        ("CCAPI_QUOTA_PER_USD", "2.5"),
        ("CCAPI_QUOTA_PER_USD", "many"),
        ("CCAPI_SUNO_CONFIRM", "sometimes"),
    ],
)
def test_an_unusable_budget_setting_is_refused_at_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
