"""The phases a simulated class goes through (asyncio): logins, starts, autosaves, submits, checks."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from typing import Any

from .client import TIMEOUT, Endpoint, Http, Student, closed_loop, make_response, open_loop
from .proc import log, percentile

QUIZ = "module-04-prep"
CLIENTS = 32  # the closed-loop phases: this many clients at once
MOON_SEQ = 8 * 10**8  # the moonshot's seqs start above every wrk round's (rounds use r * 10**8)


class Bench:
    def __init__(self, args: argparse.Namespace, port: int, students: list[Student]):
        self.args = args
        self.port = port
        self.rng = random.Random(args.seed)
        self.students = students
        self.ep: dict[str, Endpoint] = {}
        self.checked: dict[str, int] = {}  # phase -> acknowledged answers checked
        self.lost: dict[str, int] = {}  # phase -> answers lost
        self.unacked_stored = 0
        self.notes: list[str] = []
        self.spike_draw: dict[str, Any] = {}
        self.moon: dict[str, Any] = {}

    def endpoint(self, phase: str, name: str) -> Endpoint:
        key = f"{phase}/{name}"
        if key not in self.ep:
            self.ep[key] = Endpoint(f"{name} ({phase})")
        return self.ep[key]

    def http(self, limit: int | None = None, keepalive: bool = False) -> Http:
        return Http(self.port, limit=limit or self.args.max_connections, timeout=self.args.timeout, keepalive=keepalive)

    # ------------------------------------------------------------ the class, before the saturation
    async def logins(self, mem: Any) -> None:
        """Every student asks for a token, CLIENTS at a time (closed loop); a 429 waits its Retry-After."""
        mem.enter("logins")
        ep, http, loop = self.endpoint("logins", "token"), self.http(), asyncio.get_running_loop()

        async def login(s: Student) -> None:
            t0 = loop.time()
            while True:
                st, data = await http.call("POST", "/api/v1/auth/token", {"username": s.username, "password": s.password})
                if st == 429 and loop.time() - t0 < self.args.timeout:
                    ep.throttled += 1
                    wait = data.get("retry_after", 1) if isinstance(data, dict) else 1
                    await asyncio.sleep(float(wait))
                    continue
                if ep.record(loop.time() - t0, st, data, (200,)):
                    s.token = data["token"]
                return

        log(f"logins: {len(self.students)} students, {CLIENTS} clients (closed loop)")
        await closed_loop(self.students, CLIENTS, login)
        log(ep.line().strip())

    async def spike(self, mem: Any) -> None:
        """Every student starts an attempt within the same second; what the attempts drew."""
        mem.enter("spike")
        ep, http, loop = self.endpoint("spike", "start"), self.http(), asyncio.get_running_loop()
        ready = [s for s in self.students if s.token]
        log(f"spike: {len(ready)} students start {QUIZ} within 1 s")

        latency: dict[int, float] = {}

        async def start(t_sched: float, s: Student) -> None:
            st, data = await http.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=s.token)
            latency[s.i] = loop.time() - t_sched
            if ep.record(latency[s.i], st, data, (201,)):
                s.attempt = data

        await open_loop([(self.rng.random(), s) for s in ready], start)
        log(ep.line().strip())
        started = [s for s in ready if s.attempt]
        chains = [sum(q["type"] == "multipart" for q in s.attempt["questions"]) for s in started]  # type: ignore[index]
        figures = [sum(len(q.get("figures") or []) for q in s.attempt["questions"]) for s in started]  # type: ignore[index]
        both = [latency[s.i] for s, c, f in zip(started, chains, figures) if c and f >= 2]
        self.spike_draw = {"attempts": len(started), "with_chain": sum(1 for c in chains if c),
                           "figures_min": min(figures, default=0), "figures_max": max(figures, default=0),
                           "figures_mean": sum(figures) / len(figures) if figures else 0.0,
                           "chain_and_2_figures": len(both), "chain_and_2_figures_p95": percentile(both, 95)}
        d = self.spike_draw
        log(f"spike draw: {d['with_chain']}/{d['attempts']} attempts include a multi-part chain; figures per attempt "
            f"{d['figures_min']}-{d['figures_max']} (mean {d['figures_mean']:.1f}); {len(both)} attempts have a chain "
            f"and at least two figures (their start p95 {d['chain_and_2_figures_p95']:.2f} s)")

    async def paced(self, mem: Any) -> None:
        """Open loop: each student saves its answers as a Poisson process (latency from the scheduled time)."""
        a = self.args
        mem.enter("paced")
        ep, http, loop = self.endpoint("paced", "autosave"), self.http(), asyncio.get_running_loop()
        going = [s for s in self.students if s.attempt]
        events, last = [], 0.0
        for s in going:
            t = 0.0
            for k, q in enumerate(s.attempt["questions"]):  # type: ignore[index]
                t += self.rng.expovariate(1.0 / a.save_interval)
                events.append((t, (s, q, k + 1, make_response(q, self.rng))))
            last = max(last, t)
        log(f"paced: {len(events)} autosaves, each student one save per {a.save_interval:g} s on average "
            f"(~{len(going) / a.save_interval:.0f} saves/s, open loop), ~{last:.0f} s")

        async def save(t_sched: float, ev: tuple) -> None:
            s, q, seq, value = ev
            aid = s.attempt["attempt_id"]
            st, data = await http.call("PUT", f"/api/v1/attempts/{aid}/responses/{q['id']}",
                                       {"response": value, "seq": seq}, token=s.token)
            if ep.record(loop.time() - t_sched, st, data, (200,)):
                s.ack(aid, q["id"], seq, value)

        await open_loop(events, save)
        log(ep.line().strip())

    async def submits(self, mem: Any) -> None:
        mem.enter("submits")
        ep, http, loop = self.endpoint("submits", "submit"), self.http(), asyncio.get_running_loop()
        going = [s for s in self.students if s.attempt]

        async def submit(s: Student) -> None:
            t0 = loop.time()
            st, data = await http.call("POST", f"/api/v1/attempts/{s.attempt['attempt_id']}/submit", token=s.token)
            ep.record(loop.time() - t0, st, data, (200,))

        log(f"submits: {len(going)} attempts, {CLIENTS} clients (closed loop)")
        await closed_loop(going, CLIENTS, submit)
        log(ep.line().strip())

    async def starts(self, mem: Any) -> None:
        """The second attempts (for the saturation phase), CLIENTS at a time."""
        mem.enter("starts")
        ep, http, loop = self.endpoint("starts", "start"), self.http(), asyncio.get_running_loop()
        going = [s for s in self.students if s.attempt]

        async def start(s: Student) -> None:
            t0 = loop.time()
            st, data = await http.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=s.token)
            if ep.record(loop.time() - t0, st, data, (201,)):
                s.attempt2 = data

        log(f"starts: {len(going)} second attempts, {CLIENTS} clients (closed loop)")
        await closed_loop(going, CLIENTS, start)
        log(ep.line().strip())

    async def verify(self, mem: Any, phase: str, targets: list[tuple[Student, int]], state: str | None) -> None:
        """Every acknowledged answer of these attempts is stored (seq at least the acknowledged one, and the
        same value at that seq); an attempt that can't be read counts all its answers as lost."""
        mem.enter(f"verify {phase}")
        ep, http, loop = self.endpoint("verify", f"GET attempt {phase}"), self.http(8), asyncio.get_running_loop()
        checked = lost = 0

        async def check(item: tuple[Student, int]) -> None:
            nonlocal checked, lost
            s, aid = item
            mine = {qid: v for (a, qid), v in s.acked.items() if a == aid}
            t0 = loop.time()
            st, data = await http.call("GET", f"/api/v1/attempts/{aid}", token=s.token)
            if not ep.record(loop.time() - t0, st, data, (200,)):
                self.notes.append(f"could not read attempt {aid}: {st}")
                lost += len(mine)
                return
            if state and data.get("state") != state:
                self.notes.append(f"attempt {aid} is {data.get('state')}, not {state}")
            stored = {q["id"]: q for q in data["questions"]}
            for qid, (seq, value) in mine.items():
                checked += 1
                q = stored.get(qid, {})
                sseq = q.get("seq") or 0
                if sseq > seq:
                    self.unacked_stored += 1  # a later save that timed out was stored after all
                elif sseq < seq or q.get("response") != value:
                    lost += 1
                    if len(self.notes) < 20:
                        self.notes.append(f"attempt {aid} {qid}: acknowledged seq {seq} {json.dumps(value)[:60]}, "
                                          f"stored seq {sseq} {json.dumps(q.get('response'))[:60]}")

        await closed_loop(targets, 8, check)
        self.checked[phase], self.lost[phase] = checked, lost
        log(f"verify {phase}: {checked} acknowledged answers checked, {lost} lost")

    # ------------------------------------------------------------ saturation helpers
    def saturation_slots(self) -> list[tuple[Student, dict, Any]]:
        """(student, question, response) of every open second attempt, interleaved across students."""
        ready = [s for s in self.students if s.attempt2]
        nq = max((len(s.attempt2["questions"]) for s in ready), default=0)  # type: ignore[index]
        slots = []
        for k in range(nq):
            for s in ready:
                qs = s.attempt2["questions"]  # type: ignore[index]
                if k < len(qs):
                    slots.append((s, qs[k], make_response(qs[k], self.rng)))
        return slots

    async def verify_saturation(self, mem: Any, slots: list[tuple[Student, dict, Any]],
                                acked: dict[int, int]) -> tuple[int, int]:
        """Lost = a slot whose stored seq is below the highest acknowledged one, or whose value differs."""
        mem.enter("verify saturation")
        http, loop = self.http(8), asyncio.get_running_loop()
        by_attempt: dict[int, Any] = {}
        students = {s.attempt2["attempt_id"]: s for s, _, _ in slots}  # type: ignore[index]
        ep = self.endpoint("verify", "GET attempt (saturation)")

        async def get(item: tuple[int, Student]) -> None:
            aid, s = item
            t0 = loop.time()
            st, data = await http.call("GET", f"/api/v1/attempts/{aid}", token=s.token)
            if ep.record(loop.time() - t0, st, data, (200,)):
                by_attempt[aid] = {q["id"]: q for q in data["questions"]}

        await closed_loop(list(students.items()), 8, get)
        lost, checked = 0, 0
        for idx, (s, q, value) in enumerate(slots, start=1):
            stored_q = by_attempt.get(s.attempt2["attempt_id"], {}).get(q["id"])  # type: ignore[index]
            seq = acked.get(idx)
            if stored_q is None:
                lost += seq is not None
                continue
            if stored_q.get("response") is not None and stored_q.get("response") != value:
                lost += 1  # a value nobody sent for this slot
                self.notes.append(f"attempt {s.attempt2['attempt_id']} {q['id']}: stored {stored_q.get('response')!r}")
                continue
            if seq is None:
                continue
            checked += 1
            if (stored_q.get("seq") or 0) < seq:
                lost += 1
                if len(self.notes) < 20:
                    self.notes.append(f"attempt {s.attempt2['attempt_id']} {q['id']}: acknowledged seq {seq}, "
                                      f"stored seq {stored_q.get('seq')}")
        self.checked["saturation"], self.lost["saturation"] = checked, lost
        log(f"verify saturation: {checked} slots with an acknowledged wrk save checked, {lost} lost")
        return lost, checked

    # ------------------------------------------------------------ the moonshot
    async def moonshot(self, mem: Any, extras: list[Student], tokens: dict[str, str]) -> None:
        """MOON students (the class on their open second attempts, plus ``extras`` who start one now) each save
        as a Poisson process at one save per --moon-interval s for --moon-duration s, on keep-alive
        connections; latency from the scheduled time, and the client's own lag (scheduled -> request begun)."""
        a = self.args
        loop = asyncio.get_running_loop()
        for s in extras:
            s.token = tokens.get(s.username)
        mem.enter("moonshot starts")
        ep_start = self.endpoint("moonshot", "start (extra students)")
        http = self.http()

        async def start(s: Student) -> None:
            t0 = loop.time()
            st, data = await http.call("POST", f"/api/v1/quizzes/{QUIZ}/attempts", token=s.token)
            if ep_start.record(loop.time() - t0, st, data, (201,)):
                s.attempt2 = data

        log(f"moonshot: {len(extras)} more students start an attempt ({CLIENTS} clients)")
        await closed_loop(extras, CLIENTS, start)
        log(ep_start.line().strip())
        crowd = [s for s in self.students + extras if s.attempt2][:a.moon_students]
        http = self.http(keepalive=True)
        events = []  # the requests are built ahead, so that the client keeps its schedule
        for s in crowd:
            aid, qs = s.attempt2["attempt_id"], s.attempt2["questions"]  # type: ignore[index]
            t, k = self.rng.uniform(0, a.moon_interval), 0  # the first save somewhere in the first interval
            while t < a.moon_duration:
                q, seq = qs[k % len(qs)], MOON_SEQ + k + 1
                value = make_response(q, self.rng)
                raw = http.raw("PUT", f"/api/v1/attempts/{aid}/responses/{q['id']}", {"response": value, "seq": seq},
                               token=s.token)
                events.append((t, (s, aid, q["id"], seq, value, raw)))
                k += 1
                t += self.rng.expovariate(1.0 / a.moon_interval)
        mem.enter("moonshot")
        ep = self.endpoint("moonshot", "autosave")
        log(f"moonshot: {len(crowd)} students, one save per {a.moon_interval:g} s each "
            f"(~{len(crowd) / a.moon_interval:.0f} saves/s), {a.moon_duration:g} s: {len(events)} autosaves, "
            "keep-alive connections")

        async def save(t_sched: float, ev: tuple) -> None:
            s, aid, qid, seq, value, raw = ev
            try:  # the timeout counts from the scheduled time: a server far behind doesn't stretch the phase
                st, data, t_begin = await asyncio.wait_for(http.send(raw), a.timeout - (loop.time() - t_sched))
            except asyncio.TimeoutError:
                st, data, t_begin = TIMEOUT, None, loop.time()
            ep.lag.append(t_begin - t_sched)
            if ep.record(loop.time() - t_sched, st, data, (200,)):
                s.ack(aid, qid, seq, value)

        cpu0, t0 = _own_cpu(), loop.time()
        await open_loop(events, save)
        wall = loop.time() - t0
        self.moon = {"students": len(crowd), "saves": len(events), "wall": wall, "rate": len(events) / a.moon_duration,
                     "client_cpu": (_own_cpu() - cpu0) / wall, "connections": http.opened}
        http.close()
        log(ep.line().strip())
        if ep.lag:
            lag = [x * 1e3 for x in ep.lag]
            log(f"moonshot client: lag p50 {percentile(lag, 50):.1f} ms, p95 {percentile(lag, 95):.1f} ms, "
                f"max {max(lag):.1f} ms; {self.moon['client_cpu'] * 100:.0f}% of one core; "
                f"{http.opened} connections opened")
        await self.verify(mem, "moonshot", [(s, s.attempt2["attempt_id"]) for s in crowd], "open")  # type: ignore[index]


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system
