"""Crash test: SIGKILL the server in the middle of autosaves and submits, restart, check nothing is lost."""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
STUDENTS = 8
SUBMITTERS = 3  # these submit part-way through
GONE = (OSError, http.client.HTTPException)  # what a client sees of a killed server


@pytest.fixture
def server(tmp_path):
    banks = tmp_path / "banks"
    shutil.copytree(SAMPLE, banks)
    (banks / "quizzes" / "crash.yaml").write_text(
        "id: crash\ntitle: Crash\nslots:\n  - {items: [s-num-delta, s-momentum, s-keras, s-num-static], count: 4}\n")
    srv = LiveServer(tmp_path, banks, workers=2)
    roster = "username,full_name,student_id,email,password\n" + "".join(
        f"c{i},C {i},{i},c{i}@example.org,password-{i:03d}\n" for i in range(STUDENTS))
    srv.import_roster(roster)
    srv.start()
    yield srv
    srv.stop()


def test_sigkill_mid_load_loses_no_acknowledged_write(server):
    tokens = [server.token(f"c{i}", f"password-{i:03d}") for i in range(STUDENTS)]
    attempts = []
    for t in tokens:
        status, a = server.api("POST", "/api/v1/quizzes/crash/attempts", token=t)
        assert status == 201
        attempts.append(a)
    acked: list[dict[str, int]] = [{} for _ in range(STUDENTS)]  # question -> last acknowledged seq
    submitted: dict[int, float] = {}  # student -> score acknowledged by submit
    stop = threading.Event()
    count = [0]
    lock = threading.Lock()

    def student(i: int) -> None:
        a, token = attempts[i], tokens[i]
        qids = [q["id"] for q in a["questions"]]
        seq = 0
        while not stop.is_set():
            seq += 1
            qid = qids[seq % len(qids)]
            try:
                status, _ = server.api("PUT", f"/api/v1/attempts/{a['attempt_id']}/responses/{qid}",
                                       {"response": str(seq), "seq": seq}, token=token, timeout=5)
            except GONE:
                return  # the server is gone
            if status == 200:
                acked[i][qid] = seq
                with lock:
                    count[0] += 1
            elif status == 409 and i in submitted:
                return
            if i < SUBMITTERS and seq == 10:
                try:
                    status, result = server.api("POST", f"/api/v1/attempts/{a['attempt_id']}/submit", token=token)
                except GONE:
                    return
                if status == 200:
                    submitted[i] = result["score"]

    threads = [threading.Thread(target=student, args=(i,)) for i in range(STUDENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while count[0] < 150 and time.monotonic() < deadline:  # wait for real load, not for a fixed time
        time.sleep(0.01)
    assert count[0] >= 150, "the load never got going"
    server.kill()  # SIGKILL to gunicorn's master and workers, mid-request
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(submitted) >= 1
    server.start()  # same database, after a crash
    for i in range(STUDENTS):
        status, a = server.api("GET", f"/api/v1/attempts/{attempts[i]['attempt_id']}", token=tokens[i])
        assert status == 200
        stored = {q["id"]: q for q in a["questions"]}
        for qid, seq in acked[i].items():
            q = stored[qid]
            # what was acknowledged is there; a later write may have landed without its answer
            assert q["seq"] >= seq, (i, qid, q["seq"], seq)
            assert q["response"] == str(q["seq"])
        if i in submitted:
            assert a["state"] == "submitted" and a["score"] == submitted[i]
            status, again = server.api("POST", f"/api/v1/attempts/{a['attempt_id']}/submit", token=tokens[i])
            assert status == 200 and again["score"] == submitted[i]  # graded once: a resubmit changes nothing
        elif a["state"] == "open":
            status, result = server.api("POST", f"/api/v1/attempts/{a['attempt_id']}/submit", token=tokens[i])
            assert status == 200 and result["max_score"] == 4.0
