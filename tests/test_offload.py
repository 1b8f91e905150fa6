"""The hashing lane of a gevent worker (quizengine/offload.py), run in a child process patched by
gevent as `quizengine serve`'s workers are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json
    import gevent
    from quizengine import offload

    lock = monkey.get_original("_thread", "allocate_lock")  # a real lock: waiting on it holds the event loop
    third_done = lock()
    third_done.acquire()
    ran, answers = [], {}

    def work(i):
        ran.append(i)
        if i == 3:
            third_done.release()
        if i == 4:
            raise ValueError("four")
        return i * 10

    lane_work = offload.in_thread(work, 1)

    def call(i):
        try:
            answers[i] = lane_work(i)
        except ValueError as e:
            answers[i] = str(e)

    first = [gevent.spawn(call, i) for i in range(4)]
    gevent.sleep(0)  # each greenlet queues its call, then waits for its answer
    # the event loop is held here (no greenlet runs, no result is delivered), yet the lane works on:
    # its thread takes each queued call as soon as it finished the last
    held = third_done.acquire(timeout=30)
    gevent.joinall(first + [gevent.spawn(call, i) for i in range(4, 8)])
    print(json.dumps({"held": held, "ran": ran, "answers": answers}))
""")


def test_the_lane_runs_calls_in_arrival_order_back_to_back():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["held"]  # all four ran while the event loop was held (gevent's ThreadPool(1) runs one)
    assert got["ran"] == list(range(8))  # first come, first served
    assert got["answers"] == {"0": 0, "1": 10, "2": 20, "3": 30, "4": "four", "5": 50, "6": 60, "7": 70}


def test_without_gevent_the_call_runs_here():
    import threading

    from quizengine import offload

    f = offload.in_thread(lambda x: (threading.get_ident(), x + 1), 1)
    assert f(1) == (threading.get_ident(), 2)


FAIR = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json
    import socket
    import gevent
    from gevent.event import Event
    from gevent.server import StreamServer
    from quizengine import offload, server

    lock = monkey.get_original("_thread", "allocate_lock")
    gate = lock()
    gate.acquire()

    def hold(i):  # a hash that runs until the gate opens
        gate.acquire()
        gate.release()
        return i

    held = offload.in_thread(hold, 1)
    accepted = Event()
    srv = server.fair_server(StreamServer)(("127.0.0.1", 0), handle=lambda sock, addr: accepted.set())
    srv.max_accept = 1
    srv.start()
    calls = [gevent.spawn(held, i) for i in range(server.ACCEPT_BACKLOG)]
    gevent.sleep(0)  # both queued: the lane is backed up
    backlog = offload.backlog()
    client = socket.create_connection(srv.address)
    srv._do_read()  # the connection is waiting: a backed-up lane leaves it in the kernel's queue
    gevent.sleep(0)  # (a handler spawned would run now)
    refused = not accepted.is_set() and srv._watcher is None
    gate.release()  # the lane answers: the worker accepts again
    gevent.joinall(calls)
    ok = accepted.wait(30)
    print(json.dumps({"backlog": backlog, "refused": refused, "accepted_after": ok, "left": offload.backlog()}))
""")


def test_a_worker_accepts_no_connection_while_its_lane_is_backed_up_and_resumes_as_it_answers():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", FAIR], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"backlog": 2, "refused": True, "accepted_after": True, "left": 0}
