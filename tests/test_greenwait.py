"""quizengine/greenwait.py: psycopg's generators driven on the gevent hub: what each wait reports,
the deadline, and other greenlets running while a query waits for PostgreSQL."""

from __future__ import annotations

import socket

import gevent
import gevent.socket
import psycopg
import pytest
from psycopg import errors, waiting

from quizengine import greenwait
from tests.pg import throwaway_postgres


def talk(a: socket.socket, log: list):
    """A generator as psycopg's: wait to write, write, wait to read, read; what it was sent, logged."""
    log.append((yield waiting.WAIT_W))
    a.send(b"ping")
    log.append((yield waiting.WAIT_R))
    got = a.recv(10)
    log.append((yield waiting.WAIT_RW))
    return got


def test_each_wait_reports_what_it_waited_for_and_the_result_comes_back():
    a, b = socket.socketpair()
    a.setblocking(False)
    log: list = []

    def peer():  # another greenlet: it runs while the generator waits
        gevent.socket.wait_read(b.fileno())
        assert b.recv(10) == b"ping"
        b.send(b"pong")

    gevent.spawn(peer)  # runs once wait() hands the hub the turn
    assert greenwait.wait(talk(a, log), a.fileno()) == b"pong"
    assert log == [waiting.READY_W, waiting.READY_R, waiting.READY_RW]
    a.close()
    b.close()


def test_a_wait_past_its_deadline_raises_psycopgs_timeout():
    a, b = socket.socketpair()

    def never():
        yield waiting.WAIT_R  # nothing is ever sent

    with pytest.raises(errors._WaitTimeout):
        greenwait.wait(never(), a.fileno(), timeout=0.05)
    a.close()
    b.close()


def test_it_is_used_only_where_gevent_patched_select(monkeypatch):
    monkeypatch.setattr(waiting, "wait", waiting.wait)  # (restored after the test)
    before = waiting.wait
    assert greenwait.use_for_psycopg() is False and waiting.wait is before  # pytest's process is not patched
    from gevent import monkey

    monkeypatch.setattr(monkey, "is_module_patched", lambda name: name == "select")
    assert greenwait.use_for_psycopg() is True and waiting.wait is greenwait.wait


@pytest.mark.slow
def test_other_greenlets_run_while_a_query_waits_for_postgresql(monkeypatch):
    monkeypatch.setattr(waiting, "wait", greenwait.wait)
    with throwaway_postgres() as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as slow, psycopg.connect(dsn, autocommit=True) as other:
            ticks: list[int] = []
            answers: list = []

            def ticker():
                while len(answers) < 2:
                    ticks.append(1)
                    gevent.sleep(0.01)

            def quick():
                gevent.sleep(0.05)
                answers.append(("quick", other.execute("SELECT 1 + 1").fetchone()[0]))

            t, q = gevent.spawn(ticker), gevent.spawn(quick)
            row = slow.execute("SELECT pg_sleep(0.5), %s::int * 2", (21,)).fetchone()
            answers.append(("slow", row[1]))
            gevent.joinall([t, q])
    # the other greenlets ran, and the quick query was answered, while the slow one waited
    assert answers == [("quick", 2), ("slow", 42)] and len(ticks) >= 10
