"""Settings are read without side effects; the app's first start creates the secret key it needs."""

from __future__ import annotations

import pytest

from quizengine import create_app
from quizengine.config import from_env


@pytest.fixture
def instance(tmp_path, monkeypatch):
    path = tmp_path / "instance"
    for var in ("QUIZENGINE_SECRET_KEY", "QUIZENGINE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUIZENGINE_INSTANCE", str(path))
    return path


def test_reading_the_settings_writes_nothing(instance):
    settings = from_env()
    assert settings["SECRET_KEY"] is None
    assert not instance.exists()


def test_the_first_app_start_creates_a_private_key_that_later_starts_reuse(instance):
    app = create_app({"DATABASE_URL": "sqlite://"})
    key = instance / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(app.config["SECRET_KEY"]) == 64
    assert from_env()["SECRET_KEY"] == app.config["SECRET_KEY"]
    again = create_app({"DATABASE_URL": "sqlite://"})
    assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    app.extensions["quizengine.db"].dispose()
    again.extensions["quizengine.db"].dispose()


def test_a_key_from_the_environment_or_the_caller_creates_no_file(instance, monkeypatch):
    monkeypatch.setenv("QUIZENGINE_SECRET_KEY", "from-env")
    app = create_app({"DATABASE_URL": "sqlite://"})
    assert app.config["SECRET_KEY"] == "from-env"
    monkeypatch.delenv("QUIZENGINE_SECRET_KEY")
    other = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "given"})
    assert other.config["SECRET_KEY"] == "given"
    assert not (instance / "secret_key").exists()
    app.extensions["quizengine.db"].dispose()
    other.extensions["quizengine.db"].dispose()


def test_the_server_tames_glibc_malloc_before_forking_its_workers():
    """quizengine serve sets a fixed mmap threshold and 2 arenas (memory_bench: -44 MiB RSS after a
    class); on glibc both settings are accepted."""
    import platform

    from quizengine.server import tame_malloc
    assert tame_malloc() is (platform.libc_ver()[0] == "glibc")
