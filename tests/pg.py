"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tool(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"{name} not found: install the PostgreSQL server (Debian: apt-get install postgresql)")
    return str(found)


@contextmanager
def throwaway_postgres(options: str = "") -> Iterator[str]:
    """Start a private cluster on a free loopback port; yield its SQLAlchemy URL; always stop it.

    ``options``: more server settings (e.g. ``-c shared_preload_libraries=pg_stat_statements``).
    """
    tmp = Path(tempfile.mkdtemp(prefix="qe-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    # initdb refuses to run as root: run the server as the postgres account then.
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(tmp, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run(prefix + list(cmd), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(_tool("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--no-sync")
        run(_tool("pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 {options}", "start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(prefix + [_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
