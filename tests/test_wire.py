"""quizengine/wire.py: a response whose whole body comes in one write goes out in one send, with
the bytes gunicorn's own Response sends in two; anything else is gunicorn's; a frozen config reads
as the live one; a peer's trust as a proxy is decided once per address."""

from __future__ import annotations

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import message
from gunicorn.http.wsgi import Response

from quizengine.wire import OneSendResponse, freeze_config, trusted_proxy_once


class Sock:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


class Req:
    def __init__(self, method: str = "PUT", version: tuple = (1, 1)):
        self.method, self.version = method, version

    def should_close(self) -> bool:
        return False


BODY = b'{"saved_at":"2026-12-01T19:00:00+00:00","seq":7}\n'


def send(cls: type, status: str, headers: list, writes: list[bytes], method: str = "PUT",
         version: tuple = (1, 1)) -> list[bytes]:
    sock = Sock()
    resp = cls(Req(method, version), sock, Config())
    resp.start_response(status, headers)
    for w in writes:
        resp.write(w)
    resp.close()
    return sock.sends


@pytest.fixture(autouse=True)
def one_date(monkeypatch):
    monkeypatch.setattr(util, "http_date", lambda timestamp=None: "Tue, 01 Dec 2026 19:00:00 GMT")


def test_a_whole_body_goes_out_in_one_send_with_gunicorns_bytes():
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY))), ("Cache-Control", "no-store")]
    ours, theirs = send(OneSendResponse, "200 OK", headers, [BODY]), send(Response, "200 OK", headers, [BODY])
    assert len(theirs) == 2 and len(ours) == 1
    assert ours[0] == b"".join(theirs)
    assert ours[0].startswith(b"HTTP/1.1 200 OK\r\n") and ours[0].endswith(b"\r\n\r\n" + BODY)


@pytest.mark.parametrize("status, headers, writes, method, version", [
    ("200 OK", [("Content-Type", "text/html")], [b"<p>", b"streamed</p>"], "GET", (1, 1)),  # chunked
    ("200 OK", [("Content-Length", "8")], [b"four", b"more"], "GET", (1, 1)),  # the body in two writes
    ("200 OK", [("Content-Length", "4")], [b"four"], "HEAD", (1, 1)),  # no body on the wire
    ("204 NO CONTENT", [], [b""], "DELETE", (1, 1)),
    ("200 OK", [("Content-Length", "4")], [b"fourmore"], "GET", (1, 1)),  # more than declared: cut
    ("200 OK", [("Content-Length", "0")], [b""], "GET", (1, 0)),
])
def test_anything_else_is_gunicorns_own(status, headers, writes, method, version):
    assert send(OneSendResponse, status, headers, writes, method, version) == \
        send(Response, status, headers, writes, method, version)


def test_a_frozen_config_reads_as_the_live_one():
    live = Config()
    live.set("limit_request_fields", 57)
    live.set("keepalive", 5)
    frozen = Config()
    frozen.set("limit_request_fields", 57)
    frozen.set("keepalive", 5)
    freeze_config(frozen)
    for name in live.settings:
        assert getattr(frozen, name) == getattr(live, name), name
    assert frozen.limit_request_fields == 57 and frozen.is_ssl == live.is_ssl and "limit_request_fields" in vars(frozen)


class Peer(message.HeaderPolicy):
    def __init__(self, cfg: Config, peer_addr) -> None:  # type: ignore[no-untyped-def]
        self.cfg, self.peer_addr = cfg, peer_addr


def test_the_trusted_proxy_answer_is_gunicorns_and_looked_up_once_per_address(monkeypatch):
    cfg = Config()
    cfg.set("forwarded_allow_ips", "10.0.0.0/8, 127.0.0.1")
    freeze_config(cfg)
    monkeypatch.setattr(message.HeaderPolicy, "_peer_is_trusted_proxy", message.HeaderPolicy._peer_is_trusted_proxy)
    peers = [("10.1.2.3", 5000), ("127.0.0.1", 1), ("192.0.2.7", 80), ("not an address", 1), "/run/unix.sock"]
    theirs = [message.HeaderPolicy._peer_is_trusted_proxy(Peer(cfg, p)) for p in peers]
    assert theirs == [True, True, False, False, True]
    lookups: list[str] = []
    real = message._ip_in_allow_list
    monkeypatch.setattr(message, "_ip_in_allow_list", lambda ip, *a: lookups.append(ip) or real(ip, *a))
    trusted_proxy_once()
    trusted_proxy_once()  # (a second call changes nothing)
    for _ in range(3):
        assert [Peer(cfg, p)._peer_is_trusted_proxy() for p in peers] == theirs
        assert Peer(cfg, ("10.1.2.3", 6000))._peer_trusted_for_forwarded() == (cfg.secure_scheme_headers,
                                                                                 cfg.forwarder_headers)
        assert Peer(cfg, ("192.0.2.7", 6000))._peer_trusted_for_forwarded() == ({}, [])
    assert sorted(lookups) == ["10.1.2.3", "127.0.0.1", "192.0.2.7", "not an address"]
