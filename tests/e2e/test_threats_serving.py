"""Slow clients can't block anyone: slow or half-open connections against a live `quizengine serve`.

Each test opens slow sockets (loopback only), then checks that honest requests (the login page, an
autosave) are answered within HONEST_BOUND s while those sockets are still open, and that the
server reclaims them by its deadlines (quizengine/server.py). The last test does the same through
nginx with deploy/nginx.conf (TLS on loopback, its own ports and certificate).
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from quizengine.server import BODY_TIMEOUT, HEAD_TIMEOUT
from tests.live import LiveServer, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample"
NGINX = "/usr/sbin/nginx"
SLOW = 50
HONEST_BOUND = 2.0  # s: an honest request, while the slow sockets are open


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    banks = tmp / "banks"
    shutil.copytree(SAMPLE, banks)
    srv = LiveServer(tmp, banks, workers=2)
    srv.import_roster("username,full_name,student_id,email,password\nhonest,Honest,1,h@example.org,password-honest\n")
    srv.start()
    srv.student = srv.token("honest", "password-honest")  # type: ignore[attr-defined]
    status, attempt = srv.api("POST", "/api/v1/quizzes/every-type/attempts", token=srv.student)  # type: ignore[attr-defined]
    assert status == 201, attempt
    q = next(q for q in attempt["questions"] if q["type"] == "short_text")
    srv.save_path = f"/api/v1/attempts/{attempt['attempt_id']}/responses/{q['id']}"  # type: ignore[attr-defined]
    srv.seq = 0  # type: ignore[attr-defined]
    yield srv
    srv.stop()


class Slow:
    """Slow sockets of one kind; a thread dribbles one byte a second into the 'headers' ones."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None):
        self.port, self.tls = port, tls
        self.socks: list[tuple[str, socket.socket]] = []
        self.stop = threading.Event()
        self.dribbler = threading.Thread(target=self._dribble, daemon=True)

    def open(self, kind: str, n: int, head: bytes = b"") -> None:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_hostname="127.0.0.1")
            if kind == "headers":
                s.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            elif kind == "body":
                s.sendall(head)  # complete headers, a Content-Length, and part of the body
            self.socks.append((kind, s))

    def _dribble(self) -> None:
        while not self.stop.wait(1.0):
            for kind, s in self.socks:
                if kind == "headers":
                    try:
                        s.send(b"a")
                    except OSError:
                        pass

    def still_open(self) -> int:
        """How many of the sockets the server hasn't closed (nor answered)."""
        n = 0
        for _, s in self.socks:
            s.setblocking(False)
            try:
                s.recv(1)  # data or b"" (closed): not open
            except (BlockingIOError, ssl.SSLWantReadError):
                n += 1  # (a TLS 1.3 session ticket makes a socket readable without application data)
            except OSError:
                pass
            finally:
                s.setblocking(True)
        return n

    def wait_answered(self, timeout: float) -> list[bytes]:
        """What the server sent (b'' when it just closed) on each socket, within ``timeout`` s."""
        deadline, out = time.monotonic() + timeout, []
        for _, s in self.socks:
            data = b""
            while True:  # until the server closes, or a whole response (head and Content-Length body)
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(4096)
                except (TimeoutError, ssl.SSLError):
                    data = data or b"<still open>"
                    break
                except OSError:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                length = next((int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n"))
                               if k.strip().lower() == b"content-length"), 0)
                if not chunk or (sep and len(body) >= length):
                    break
            out.append(data)
        return out

    def close(self) -> None:
        self.stop.set()
        for _, s in self.socks:
            s.close()


@contextmanager
def slow(port: int, tls: ssl.SSLContext | None = None):
    sl = Slow(port, tls)
    try:
        yield sl
    finally:
        sl.close()


def half_body(srv: LiveServer, host: str) -> bytes:
    """An autosave whose headers promise 1000 bytes of body, of which only the first is sent."""
    return (f"PUT {srv.save_path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {srv.student}\r\n"  # type: ignore[attr-defined]
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").encode()


def assert_honest_requests_answered(srv: LiveServer, base: str, ctx: ssl.SSLContext | None = None) -> None:
    """The login page and an autosave each answer 200 within HONEST_BOUND s, a few times over."""
    for _ in range(3):
        t0 = time.monotonic()
        with urllib.request.urlopen(base + "/login", timeout=HONEST_BOUND * 3, context=ctx) as r:
            assert r.status == 200 and b"password" in r.read().lower()
        assert time.monotonic() - t0 < HONEST_BOUND
        srv.seq += 1  # type: ignore[attr-defined]
        body = json.dumps({"response": f"still here {srv.seq}", "seq": srv.seq}).encode()  # type: ignore[attr-defined]
        req = urllib.request.Request(base + srv.save_path, data=body, method="PUT",  # type: ignore[attr-defined]
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {srv.student}"})  # type: ignore[attr-defined]
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=HONEST_BOUND * 3, context=ctx) as r:
            assert r.status == 200 and json.loads(r.read())["seq"] == srv.seq  # type: ignore[attr-defined]
        assert time.monotonic() - t0 < HONEST_BOUND


def test_threat_slow_headers_block_no_one(server):
    with slow(server.port) as sl:
        sl.open("headers", SLOW)
        sl.dribbler.start()
        assert_honest_requests_answered(server, server.url)
        assert sl.still_open() == SLOW  # the honest requests got through while every slow one was open
        # a request head must be complete within HEAD_TIMEOUT s, however fast its bytes trickle in
        answers = sl.wait_answered(HEAD_TIMEOUT + 5)
        assert answers.count(b"<still open>") == 0, answers[:3]


def test_threat_half_sent_bodies_block_no_one(server):
    with slow(server.port) as sl:
        sl.open("body", SLOW, half_body(server, server.url))
        assert_honest_requests_answered(server, server.url)
        assert sl.still_open() == SLOW
        # the body never comes: after BODY_TIMEOUT s each gets a 408 saying so, in JSON
        answers = sl.wait_answered(BODY_TIMEOUT + 10)
        # ... and the connection ends there: the rest of that body is never read as a request
        assert sl.wait_answered(5) == [b""] * SLOW
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    assert f"did not arrive within {BODY_TIMEOUT:g} s".encode() in answers[0]


def test_threat_idle_connections_block_no_one(server):
    with slow(server.port) as sl:
        sl.open("idle", SLOW)
        assert_honest_requests_answered(server, server.url)
        assert sl.still_open() == SLOW
        answers = sl.wait_answered(HEAD_TIMEOUT + 5)  # closed, unanswered, after HEAD_TIMEOUT s
    assert answers == [b""] * SLOW


def test_threat_fifty_slow_connections_of_each_kind_at_once_block_no_one(server):
    with slow(server.port) as sl:
        sl.open("headers", SLOW)
        sl.open("body", SLOW, half_body(server, server.url))
        sl.open("idle", SLOW)
        sl.dribbler.start()
        assert_honest_requests_answered(server, server.url)
        assert sl.still_open() == 3 * SLOW


# ---------------------------------------------------------------- through nginx (deploy/nginx.conf)

def nginx_site(app_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with this test's ports and certificate; every other line as shipped."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in [("server 127.0.0.1:5000;", f"server 127.0.0.1:{app_port};"),
                     ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                     ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
                     ("/etc/letsencrypt/live/quiz.example.org/fullchain.pem", str(cert)),
                     ("/etc/letsencrypt/live/quiz.example.org/privkey.pem", str(key))]:
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def nginx(server, tmp_path_factory):
    if not Path(NGINX).exists():  # make test installs it (scripts/ensure-debian); never skip silently
        pytest.fail(f"{NGINX} is missing: make test installs it (scripts/ensure-debian), or apt-get install nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    http_port, https_port = free_port(), free_port()
    (tmp / "site.conf").write_text(nginx_site(server.port, http_port, https_port, cert, key))
    temp = "\n".join(f"    {k}_temp_path {tmp / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp / "nginx.conf").write_text(f"""user {getpass.getuser()};
worker_processes 1;
daemon off;
pid {tmp / 'nginx.pid'};
error_log {tmp / 'error.log'} warn;
events {{ worker_connections 512; }}
http {{
    access_log {tmp / 'access.log'};
{temp}
    include {tmp / 'site.conf'};
}}
""")
    with open(tmp / "nginx.out", "w") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    ctx = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {(tmp / 'nginx.out').read_text()} {(tmp / 'error.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield f"https://127.0.0.1:{https_port}", http_port, ctx
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_threat_slow_connections_through_nginx_block_no_one(server, nginx):
    base, http_port, ctx = nginx
    # plain HTTP only redirects to HTTPS
    conn = socket.create_connection(("127.0.0.1", http_port), timeout=5)
    conn.sendall(b"GET /login HTTP/1.1\r\nHost: quiz.example.org\r\nConnection: close\r\n\r\n")
    head = conn.recv(4096)
    conn.close()
    assert head.startswith(b"HTTP/1.1 301") and b"Location: https://quiz.example.org/login" in head
    port = int(base.rsplit(":", 1)[1])
    with slow(port, ctx) as sl:
        sl.open("headers", SLOW)
        sl.open("body", SLOW, half_body(server, "127.0.0.1"))
        sl.open("idle", SLOW)
        sl.dribbler.start()
        assert_honest_requests_answered(server, base, ctx)
        assert sl.still_open() == 3 * SLOW
    # a body declared over nginx's limit is refused at once, before it is sent or reaches the app
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1") as s:
        s.sendall(f"PUT {server.save_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {3 * 1024 * 1024 + 1}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 413 ")
