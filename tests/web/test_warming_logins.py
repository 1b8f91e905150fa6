"""The background warmer during a class's logins (services/warming.py): the students queued by logins
are planned once this worker's logins pause, or after LOGIN_PATIENCE_S at most."""

from __future__ import annotations

import pytest

from quizengine.services import warming


@pytest.fixture
def clock(monkeypatch):
    """The warmer's queue as a running warmer has it, on a clock the test moves."""
    now = [5000.0]
    warming._QUEUE.clear()
    monkeypatch.setattr(warming, "_LAST_SUBMIT", [float("-inf")])
    monkeypatch.setattr(warming, "_LAST_LOGIN", [float("-inf")])
    monkeypatch.setattr(warming.time, "monotonic", lambda: now[0])
    warming._RUNNING.set()
    yield now
    warming._RUNNING.clear()
    warming._QUEUE.clear()


def test_students_who_log_in_are_planned_once_logins_pause(clock):
    for uid in (1, 2, 3):
        warming.schedule(uid)
        clock[0] += warming.LOGIN_QUIET_S / 2  # a class logging in: no pause yet
        assert warming.next_due(clock[0]) is None
    clock[0] += warming.LOGIN_QUIET_S / 2  # a pause as long as LOGIN_QUIET_S since the last login
    assert [warming.next_due(clock[0]) for _ in range(4)] == [1, 2, 3, None]


def test_logins_that_never_pause_wait_at_most_the_patience(clock):
    warming.schedule(1)
    start, taken = clock[0], None
    while taken is None and clock[0] - start <= 2 * warming.LOGIN_PATIENCE_S:
        clock[0] += warming.LOGIN_QUIET_S / 2
        warming.schedule(2)  # another login every half pause
        taken = warming.next_due(clock[0])
    assert taken == 1 and clock[0] - start == pytest.approx(warming.LOGIN_PATIENCE_S)
    assert warming.next_due(clock[0]) is None  # the second one has waited less


def test_a_submit_queued_behind_waiting_logins_still_goes_once_submits_pause(clock):
    warming.schedule(7, after_submit=True)
    warming.schedule(8)  # a login just now: it waits; the submit waits for the submits' pause only
    clock[0] += warming.QUIET_S / 2
    warming.schedule(8)  # logins go on
    assert warming.next_due(clock[0]) is None
    clock[0] += warming.QUIET_S / 2
    warming.schedule(9)
    assert warming.next_due(clock[0]) == 7  # submits paused QUIET_S; logins have not
    clock[0] += warming.LOGIN_QUIET_S
    assert [warming.next_due(clock[0]) for _ in range(3)] == [8, 9, None]
