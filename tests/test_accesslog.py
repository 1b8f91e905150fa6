"""The cheaper access line (quizengine/accesslog.py) is gunicorn's own line, character for character."""

from __future__ import annotations

import datetime
import logging
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


def written(logger_class: type, path, env: dict, extra_filter: bool = False) -> str:
    """What the logger's access() writes to an access log file for three requests."""
    path.unlink(missing_ok=True)  # (same_second may call this again)
    cfg = Config()
    cfg.set("accesslog", str(path))
    log = logger_class(cfg)  # (gunicorn's loggers share the "gunicorn.access" logger: each setup replaces its handler)
    if extra_filter:
        log.access_log.addFilter(lambda record: "q2" not in record.getMessage())
    try:
        took = datetime.timedelta(seconds=0, microseconds=1234)
        for status in ("200 OK", "409 CONFLICT", "500 INTERNAL SERVER ERROR"):
            resp = Resp()
            resp.status = status
            log.access(resp, [("Host", "h")], env, took)
    finally:
        log.access_log.filters.clear()
        for h in list(log.access_log.handlers):
            h.close()
    return path.read_text()


def test_the_written_line_is_what_logging_writes(tmp_path, monkeypatch):
    env = environ(HTTP_REFERER='https://example.org/"a"')
    # only gunicorn's own handler, as under `quizengine serve` (pytest's capture adds its own to the logger)
    monkeypatch.setattr(logging.getLogger("gunicorn.access"), "handlers", [])
    records: list[str] = []
    make = logging.Logger.makeRecord
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda self, *a, **k: (records.append(self.name), make(self, *a, **k))[1])
    ours = same_second(lambda: (records.clear(), written(AccessLogger, tmp_path / "ours.log", env))[1:] + (
        records.count("gunicorn.access"), written(Logger, tmp_path / "theirs.log", env)))
    assert ours[0] == ours[2] and ours[0].count("\n") == 3 and '" 409 213 "https://example.org/\\"a\\""' in ours[0]
    assert ours[1] == 0 and records.count("gunicorn.access") >= 3  # ours built no LogRecord; gunicorn's one per line


def test_a_filter_on_the_access_logger_is_honoured(tmp_path):
    """With a filter (or any set-up beyond gunicorn's one handler) the line goes through logging."""
    assert written(AccessLogger, tmp_path / "filtered.log", environ(), extra_filter=True) == ""
    assert written(AccessLogger, tmp_path / "other.log", environ(RAW_URI="/other", PATH_INFO="/other"),
                   extra_filter=True).count("\n") == 3
