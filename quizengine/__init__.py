"""quizengine: a quiz and assessment engine for Module 04 (neural networks)."""

from __future__ import annotations

from typing import Any

from .constants import VERSION

__version__ = VERSION
__all__ = ["__version__", "create_app"]


def create_app(config: dict[str, Any] | None = None):
    """Build the Flask app: settings, database, login, CSRF, blueprints."""
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from pathlib import Path

    from . import config as settings
    from .db import Database
    from . import web
    from .web import (api, auth, errors, headers, instructor, instructor_accommodations, instructor_banks, lti,
                      quicksave, quickstart, student, templating)
    from .web import api_accommodations  # noqa: F401 - adds its routes to api.bp

    app = Flask(__name__, template_folder=str(settings.ROOT / "templates"),
                static_folder=str(settings.ROOT / "static"))
    app.config.update(settings.from_env())
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):  # the first start: a key is made and kept in the instance folder
        app.config["SECRET_KEY"] = settings.ensure_secret_key(Path(app.config["INSTANCE"]))
    app.extensions["quizengine.db"] = Database(app.config["DATABASE_URL"])
    app.url_map.converters["int"] = web.IdConverter  # ids beyond the INTEGER columns are 404, not 500
    csrf = CSRFProtect(app)
    auth.init_login(app)
    for bp in (auth.bp, student.bp, instructor.bp, instructor_banks.bp, instructor_accommodations.bp, api.bp):
        app.register_blueprint(bp)
    csrf.exempt(api.bp)  # bearer tokens, no cookies: nothing for a forged form to ride on
    lti.init_lti(app, csrf)
    errors.init_errors(app)
    headers.init_headers(app)
    templating.init_templating(app)
    quickstart.init_quickstart(app)  # the common API start, before Flask's request machinery
    quicksave.init_quicksave(app)  # the common autosave, before Flask's request machinery
    return app
