"""The cheaper access line (quizengine/accesslog.py) is gunicorn's own line, character for character."""

from __future__ import annotations

import datetime
import re
import time

from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from quizengine.accesslog import AccessLogger


class Resp:
    status = "409 CONFLICT"
    sent = 213
    headers = [("Content-Type", "application/json"), ("X-Frame-Options", "DENY")]


def environ(**extra: str) -> dict:
    return {"REMOTE_ADDR": "10.0.0.7", "REQUEST_METHOD": "PUT", "RAW_URI": "/api/v1/attempts/3/responses/q2?x=1",
            "PATH_INFO": "/api/v1/attempts/3/responses/q2", "QUERY_STRING": "x=1", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_USER_AGENT": 'curl/8 "quoted"', **extra}


def line(logger_class: type, fmt: str, env: dict) -> str:
    cfg = Config()
    cfg.set("access_log_format", fmt)
    log = logger_class(cfg)
    took = datetime.timedelta(seconds=1, microseconds=2345)
    return fmt % SafeAtoms(log.atoms(Resp(), [("Host", "h")], env, took))


def same_second(make):
    """``make()`` computed within one second of the clock (the time atom is the current second)."""
    while True:
        before = int(time.time())
        got = make()
        if int(time.time()) == before:
            return got


def test_the_default_line_is_gunicorns():
    fmt = Config().access_log_format
    for env in (environ(), environ(HTTP_REFERER="https://example.org/a", HTTP_AUTHORIZATION="Basic dXNlcjpwdw==")):
        ours, theirs = same_second(lambda: (line(AccessLogger, fmt, env), line(Logger, fmt, env)))
        assert ours == theirs
        assert '"PUT /api/v1/attempts/3/responses/q2?x=1 HTTP/1.1" 409 213' in ours and 'curl/8 \\"quoted\\"' in ours


def test_every_plain_atom_matches_and_header_atoms_fall_back_to_gunicorn():
    plain = " ".join(f"%({k})s" for k in "hlutrsmUqHbBfaTDMLp")
    assert line(AccessLogger, plain, environ()) == line(Logger, plain, environ())
    headers = '%(h)s "%({content-type}o)s" %({host}i)s %({remote_addr}e)s'
    assert line(AccessLogger, headers, environ()) == line(Logger, headers, environ()) == \
        '10.0.0.7 "application/json" h 10.0.0.7'


def test_the_time_is_the_current_second():
    stamp = AccessLogger(Config()).now()
    assert re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", stamp)


def test_the_logged_line_escapes_quotes_and_unknown_atoms_as_gunicorn_does():
    """What the logger hands to logging (the atoms through its wrapper) gives gunicorn's line."""
    fmt = Config().access_log_format + ' %(x)s "%(U)s"'
    env = environ(HTTP_REFERER='https://example.org/"a"', RAW_URI='/q?"x"', PATH_INFO='/p"q')
    cfg = Config()
    cfg.set("access_log_format", fmt)
    took = datetime.timedelta(seconds=1, microseconds=2345)
    ours, theirs = AccessLogger(cfg), Logger(cfg)
    got, want = same_second(lambda: tuple(fmt % log.atoms_wrapper_class(log.atoms(Resp(), [("Host", "h")], env, took))
                                          for log in (ours, theirs)))
    assert got == want and '"https://example.org/\\"a\\""' in got and ' - "/p\\"q"' in got
    braces = '%(h)s "%({content-type}o)s"'
    cfg.set("access_log_format", braces)
    assert braces % ours.atoms_wrapper_class(ours.atoms(Resp(), [("Host", "h")], env, took)) == '10.0.0.7 "application/json"'
