"""The per-address count of password checks (services/logins.py, ``reserve``): one upsert per login
that counts up to the limit, refuses past it without counting, and starts afresh once the minute is
over; the pair's lock is read again inside the write; counts made at once on PostgreSQL add up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from quizengine.models import LoginFailure
from quizengine.services import logins
from quizengine.services.clock import aware

from .conftest import POSTGRES, two_writes_at_once

ADDRESS = "192.0.2.44"


def rate_row(db) -> tuple[int, object]:
    with db.read() as s:
        row = s.get(LoginFailure, logins.throttle_keys("ann", ADDRESS)[2])
        return row.count, aware(row.window_start)


def test_the_address_count_refuses_past_its_limit_until_the_minute_is_over(db):
    th = logins.Throttle(per_address=3)
    t = logins.now()
    for k in range(3):
        with db.write() as s:
            assert logins.reserve(s, "ann", ADDRESS, t + timedelta(seconds=k), th) is None
    assert rate_row(db) == (3, t)
    with db.write() as s:
        wait = logins.reserve(s, "ann", ADDRESS, t + timedelta(seconds=20), th)
    assert wait is not None and wait.limit == "address" and wait.delay == timedelta(seconds=40)
    assert rate_row(db) == (3, t)  # a refused check is not counted
    later = t + timedelta(seconds=60)
    with db.write() as s:
        assert logins.reserve(s, "ann", ADDRESS, later, th) is None
    assert rate_row(db) == (1, later)  # a new window


def test_a_pair_locked_since_the_read_is_refused_in_the_write(db):
    th = logins.Throttle(free_failures=0, per_address=100)
    t = logins.now()
    with db.write() as s:
        logins.record_failure(s, "ann", ADDRESS, t, th)  # another login's failure: the pair waits 2 s
    with db.write() as s:
        wait = logins.reserve(s, "ann", ADDRESS, t + timedelta(seconds=1), th)
    assert wait is not None and wait.limit == "failures" and wait.delay == timedelta(seconds=1)
    with db.read() as s:  # nothing was counted for the address
        assert s.scalar(select(LoginFailure.count).where(LoginFailure.key == logins.throttle_keys("ann", ADDRESS)[2])) is None


@pytest.mark.skipif(not POSTGRES, reason="one writer at a time on SQLite: no race to test")
def test_address_counts_made_by_two_transactions_at_once_add_up(db):
    """Two hosts counting the same new address at once on PostgreSQL: the second upsert waits for
    the first transaction's row, then counts on it (no unique violation, no lost count)."""
    th, t = logins.Throttle(per_address=10), logins.now()

    def count(s) -> None:
        assert logins.reserve(s, "ann", ADDRESS, t, th) is None

    two_writes_at_once(db, count)
    assert rate_row(db) == (2, t)


def test_a_failures_lock_runs_from_when_the_slow_check_failed(db, users, monkeypatch):
    """The hash may wait its turn in the hashing lane (a class logging in): the lock it earns must
    start when the wrong password is known, or a long wait would have used up the lock already."""
    users.add("ann")
    th = logins.Throttle(free_failures=0, per_address=0)
    clock = [logins.now()]
    monkeypatch.setattr(logins, "now", lambda: clock[0])
    real = logins.check_password

    def slow_check(*args, **kwargs):
        clock[0] += timedelta(seconds=5)  # the check's turn came 5 s after the login arrived
        return real(*args, **kwargs)

    monkeypatch.setattr(logins, "check_password", slow_check)
    arrived = clock[0]
    assert logins.login(db, "ann", "wrong", ADDRESS, th).user is None
    with db.read() as s:
        locked = aware(s.get(LoginFailure, logins.throttle_keys("ann", ADDRESS)[0]).locked_until)
    assert locked == arrived + timedelta(seconds=7)  # failed at +5 s, then the first lock of 2 s
    refused = logins.login(db, "ann", "password-ann", ADDRESS, th)  # at +5 s: still locked
    assert refused.user is None and refused.retry_after is not None and refused.retry_after.limit == "failures"
