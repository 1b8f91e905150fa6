"""Gunicorn's per-request work made cheaper in a `quizengine serve` worker, with the same bytes on
the wire (README, "Performance" > "Autosave CPU").

- ``OneSendResponse``: gunicorn sends a response's status line and headers with one ``sendall``
  and its body with another. A response whose whole body comes in the app's first write (its
  Content-Length known: every JSON answer, the autosave's among them) goes out in one ``sendall``
  here: one system call, and one pass through gevent's send path (which also asks the socket's
  buffer size, a second system call), fewer per response. Anything else (a streamed or chunked
  body, HEAD, 204/304) is gunicorn's own ``write``.
- ``trusted_proxy_once``: whether a peer may set the forwarding headers (``forwarded_allow_ips``) is
  decided for every request by parsing the peer's address (``ipaddress``) and matching it against
  the allowed networks. With the settings frozen, the answer for an address never changes in a
  worker: it is kept per address (a bounded dictionary).
- ``freeze_config``: each ``cfg.NAME`` read goes through ``Config.__getattr__`` and the setting's
  ``get()``, a few dozen per request (the parser reads its limits and policies for each one). A
  worker's settings never change (a reload starts new workers), so their values are copied once
  into the worker's config object, where an attribute read finds them directly.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.http import message, wsgi

PEERS = 4096  # peer addresses whose answer is kept (a class's devices behind a few NAT addresses: few)


class OneSendResponse(wsgi.Response):
    def write(self, arg: Any) -> None:
        if (not self.headers_sent and arg.__class__ is bytes and arg and self.response_length == len(arg)
                and not self.chunked and not self._omits_body):
            tosend = self.default_headers()  # as Response.send_headers builds them
            tosend.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])
            head = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")
            self.headers_sent = True
            self.sent += len(arg)
            util.write(self.sock, head + arg)
            return
        super().write(arg)


def use_one_send() -> None:
    """Make gunicorn build its HTTP/1 responses as OneSendResponse (in this process: a worker)."""
    wsgi.Response = OneSendResponse  # type: ignore[misc]  (wsgi.create looks the name up per request)


def freeze_config(cfg: Any) -> None:
    """Copy every setting's value into ``cfg`` (its class's own attributes, e.g. properties, left alone)."""
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):
            cfg.__dict__[name] = setting.get()


def trusted_proxy_once() -> None:
    """Keep gunicorn's answer to "may this peer set the forwarding headers?" per peer address (in this
    process: a worker, whose settings ``freeze_config`` froze)."""
    policy = message.HeaderPolicy
    real = policy._peer_is_trusted_proxy
    if getattr(real, "once", False):
        return
    known: dict[str, bool] = {}

    def _peer_is_trusted_proxy(self: Any) -> bool:
        peer = self.peer_addr
        if not isinstance(peer, tuple):  # a UNIX socket: gunicorn trusts it without a lookup
            return bool(real(self))
        answer = known.get(peer[0])
        if answer is None:
            if len(known) >= PEERS:
                known.clear()
            answer = known[peer[0]] = bool(real(self))
        return answer

    _peer_is_trusted_proxy.once = True  # type: ignore[attr-defined]
    policy._peer_is_trusted_proxy = _peer_is_trusted_proxy  # type: ignore[method-assign]
