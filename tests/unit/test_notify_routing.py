"""A tenant's notification preferences: routes, quiet hours (IST, across midnight), the
rate limit, urgent kinds, masking of targets, and clear errors for bad settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.notify.routing import (
    DEFAULT_ROUTES,
    in_quiet_hours,
    masked,
    plan,
    prefs_from_settings,
)

ALL = {"telegram": {"chat_id": 123456789}, "email": {"to": "desk@example.com"},
       "webhook": {"url": "https://hooks.example.com/qs?x=1"}}
NOON_IST = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
NIGHT_IST = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 23:00 IST


def test_configured_and_routed_channels_are_planned():
    prefs = prefs_from_settings({"notify": ALL})
    got = plan("signal.approved", prefs, now=NOON_IST, sent_last_hour=0)
    assert [(p.channel, p.skip_reason) for p in got] == [
        ("telegram", None), ("email", None), ("webhook", None)]
    blocked = plan("signal.blocked", prefs, now=NOON_IST, sent_last_hour=0)
    assert [p.channel for p in blocked] == list(DEFAULT_ROUTES["signal.blocked"])
    only_email = prefs_from_settings({"notify": {"email": ALL["email"]}})
    assert [p.channel for p in plan("signal.approved", only_email, now=NOON_IST,
                                    sent_last_hour=0)] == ["email"]
    assert plan("signal.approved", prefs_from_settings({}), now=NOON_IST, sent_last_hour=0) == ()
    custom = prefs_from_settings({"notify": {**ALL, "routes": {"signal.approved": ["webhook"]}}})
    assert [p.channel for p in plan("signal.approved", custom, now=NOON_IST,
                                    sent_last_hour=0)] == ["webhook"]


def test_quiet_hours_wrap_midnight_and_spare_urgent_kinds():
    quiet = {"from": "22:00", "to": "07:00"}
    assert in_quiet_hours(NIGHT_IST, quiet) and not in_quiet_hours(NOON_IST, quiet)
    assert in_quiet_hours(datetime(2026, 11, 20, 0, 30, tzinfo=UTC), quiet)  # 06:00 IST
    assert not in_quiet_hours(datetime(2026, 11, 20, 1, 30, tzinfo=UTC), quiet)  # 07:00 IST
    assert in_quiet_hours(NOON_IST, {"from": "11:00", "to": "13:00"})
    prefs = prefs_from_settings({"notify": {**ALL, "quiet_hours": quiet}})
    held = plan("signal.approved", prefs, now=NIGHT_IST, sent_last_hour=0)
    assert {p.skip_reason for p in held} == {"quiet hours 22:00-07:00 IST"}
    urgent = plan("killswitch.tripped", prefs, now=NIGHT_IST, sent_last_hour=0)
    assert all(p.skip_reason is None for p in urgent)


def test_the_rate_limit_holds_back_what_is_over_it():
    prefs = prefs_from_settings({"notify": {**ALL, "max_per_hour": 5}})
    assert all(p.skip_reason is None for p in plan("signal.approved", prefs, now=NOON_IST,
                                                   sent_last_hour=4))
    held = plan("signal.approved", prefs, now=NOON_IST, sent_last_hour=5)
    assert all("rate limit" in p.skip_reason for p in held)
    assert all(p.skip_reason is None for p in plan("killswitch.tripped", prefs, now=NOON_IST,
                                                   sent_last_hour=50))


def test_targets_are_masked_in_the_ledger():
    assert masked("telegram", ALL["telegram"]) == "chat …6789"
    assert masked("email", ALL["email"]) == "d***@example.com"
    assert masked("webhook", ALL["webhook"]) == "https://hooks.example.com"


@pytest.mark.parametrize(("settings", "field"), [
    ({"notify": {"routes": {"signal.approved": ["sms"]}}}, "routes"),
    ({"notify": {"quiet_hours": {"from": "25:00", "to": "07:00"}}}, "quiet_hours"),
    ({"notify": {"max_per_hour": 0}}, "max_per_hour"),
    ({"notify": {"pager": {}}}, "pager"),
    ({"notify": "all"}, "notify must be an object"),
])
def test_bad_settings_name_the_field(settings, field):
    with pytest.raises(ValueError, match=field):
        prefs_from_settings(settings)
