"""`quizengine serve` formats gunicorn's Date header once per second (server.date_once_a_second)."""

from __future__ import annotations

import email.utils

from gunicorn import util

from quizengine import server


def test_the_date_header_is_gunicorns_and_formatted_once_a_second(monkeypatch):
    formatted = []
    real = util.http_date

    def counting(timestamp=None):
        formatted.append(timestamp)
        return real(timestamp)

    monkeypatch.setattr(util, "http_date", counting)
    clock = iter([1_800_000_000.25, 1_800_000_000.75, 1_800_000_001.5])
    monkeypatch.setattr(server.time, "time", lambda: next(clock))
    server.date_once_a_second()
    server.date_once_a_second()  # installed once
    got = [util.http_date() for _ in range(3)]
    want = [email.utils.formatdate(t, usegmt=True) for t in (1_800_000_000, 1_800_000_000, 1_800_000_001)]
    assert got == want and want[0].endswith("GMT") and len(formatted) == 2
    assert util.http_date(86400.0) == "Fri, 02 Jan 1970 00:00:00 GMT"  # a given time: formatted as asked
