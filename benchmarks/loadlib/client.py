"""The asyncio HTTP client of benchmarks/load.py, the simulated students and their answers."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from .proc import percentile

TIMEOUT = -1  # pseudo status: the request timed out
CONN_ERROR = 0  # pseudo status: connection refused/reset


class Http:
    """A minimal HTTP/1.1 client to 127.0.0.1.

    By default one connection per request (``Connection: close``). With ``keepalive`` it keeps a pool
    of idle connections and reuses them (the server's gevent workers keep a connection open for 5 s);
    a request on a reused connection that the server had closed meanwhile is sent again once, on a
    new connection (an autosave carries its seq, so sending it twice changes nothing).
    """

    def __init__(self, port: int, limit: int, timeout: float, keepalive: bool = False):
        self.port, self.timeout, self.keepalive = port, timeout, keepalive
        self.sem = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0  # connections opened

    def raw(self, method: str, path: str, body: Any = None, token: str | None = None) -> bytes:
        """The bytes of a request (built ahead of time by a phase that must keep its schedule)."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Connection: {'keep-alive' if self.keepalive else 'close'}\r\nContent-Length: {len(payload)}\r\n")
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        return head.encode() + b"\r\n" + payload

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        status, data, _ = await self.call_timed(method, path, body, token)
        return status, data

    async def call_timed(self, method: str, path: str, body: Any = None,
                         token: str | None = None) -> tuple[int, Any, float]:
        """(status, JSON body, loop time at which this client began the request: its own lag ends there)."""
        return await self.send(self.raw(method, path, body, token))

    async def send(self, raw: bytes) -> tuple[int, Any, float]:
        loop = asyncio.get_running_loop()
        async with self.sem:
            t_begin = loop.time()
            try:
                status, data = await asyncio.wait_for(self._exchange(raw), self.timeout)
                return status, data, t_begin
            except asyncio.TimeoutError:
                return TIMEOUT, None, t_begin
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
                return CONN_ERROR, str(e), t_begin

    async def _exchange(self, raw: bytes) -> tuple[int, Any]:
        if self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._send(reader, writer, raw)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()  # closed by the server while idle: once more on a new connection
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.opened += 1
        return await self._send(reader, writer, raw)

    async def _send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[int, Any]:
        reuse = False
        try:
            writer.write(raw)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length, close = None, not self.keepalive
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"connection" and v.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length) if length is not None else await reader.read()
            reuse = self.keepalive and not close and length is not None
        finally:
            if reuse:
                self.idle.append((reader, writer))
            else:
                writer.close()
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body.decode(errors="replace")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


@dataclass
class Endpoint:
    """Latencies (s, from the scheduled send time) and failures of one endpoint in one phase."""
    name: str
    lat: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)  # s from the scheduled time to the client beginning the request
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    throttled: int = 0  # 429 answers, retried after Retry-After (not errors)

    def record(self, latency: float, status: int, data: Any, ok: tuple[int, ...]) -> bool:
        self.lat.append(latency)
        if status in ok:
            return True
        key = {TIMEOUT: "timeout", CONN_ERROR: "connection error"}.get(status, str(status))
        self.errors[key] = self.errors.get(key, 0) + 1
        if len(self.examples) < 3:
            self.examples.append(f"{key}: {str(data)[:200]}")
        return False

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def p(self, q: float) -> float:
        """The q-th percentile of the latencies, in s."""
        return percentile(self.lat, q)

    def line(self) -> str:
        if not self.lat:
            return f"  {self.name:<34} n=0"
        ms = [x * 1e3 for x in self.lat]
        err = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())) or "0"
        return (f"  {self.name:<34} n={len(ms):<6} p50 {percentile(ms, 50):8.1f}  p95 {percentile(ms, 95):8.1f}  "
                f"p99 {percentile(ms, 99):8.1f}  max {max(ms):8.1f} ms   errors {err}"
                + (f"   (429 throttled, retried: {self.throttled})" if self.throttled else ""))


@dataclass
class Student:
    i: int
    username: str
    password: str
    token: str | None = None
    attempt: dict[str, Any] | None = None
    attempt2: dict[str, Any] | None = None
    acked: dict[tuple[int, str], tuple[int, Any]] = field(default_factory=dict)  # (attempt, qid) -> (seq, value)
    pending: list[asyncio.Task] = field(default_factory=list)

    def ack(self, attempt_id: int, qid: str, seq: int, value: Any) -> None:
        prev = self.acked.get((attempt_id, qid))
        if prev is None or prev[0] < seq:
            self.acked[(attempt_id, qid)] = (seq, value)


def make_response(q: dict[str, Any], rng: random.Random) -> Any:
    """A valid response for the question's type (README, "JSON API"), random but well formed."""
    kind = q["type"]

    def number(shape: list[int]) -> Any:
        return round(rng.uniform(-3, 3), 4) if not shape else [number(shape[1:]) for _ in range(shape[0])]

    if kind == "single_choice":
        return rng.choice(q["choices"])["id"]
    if kind == "multiple_select":
        ids = [c["id"] for c in q["choices"]]
        return rng.sample(ids, rng.randint(1, len(ids)))
    if kind == "true_false":
        return rng.random() < 0.5
    if kind == "numeric":
        return number(list(q.get("shape") or []))
    if kind == "multipart":  # {part_id: value} (CONTRACT 3a)
        return {p["id"]: number(list(p.get("shape") or [])) for p in q["parts"]}
    if kind == "short_text":
        return f"answer {rng.randrange(10**6)}"
    if kind == "matching":
        rights = [r["id"] for r in q["rights"]]
        return {left["id"]: rng.choice(rights) for left in q["lefts"]}
    if kind == "ordering":
        ids = [o["id"] for o in q["options"]]
        rng.shuffle(ids)
        return ids
    raise SystemExit(f"error: question type {kind!r} unknown to this benchmark")


async def open_loop(events: list[tuple[float, Any]], fire: Callable[[float, Any], Awaitable[None]]) -> None:
    """Start ``fire(t_sched, payload)`` at each scheduled time (s from now), whatever the server is doing."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks = []
    for offset, payload in sorted(events, key=lambda e: e[0]):
        t = t0 + offset
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(t, payload)))
    await asyncio.gather(*tasks)


async def closed_loop(items: Iterable[Any], clients: int, one: Callable[[Any], Awaitable[None]]) -> None:
    """``clients`` clients, each taking the next item as soon as its previous request is answered."""
    queue = list(items)[::-1]

    async def client() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.gather(*(client() for _ in range(clients)))
