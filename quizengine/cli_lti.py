"""`quizengine lti`: register LMS platforms, list them with the tool's keys, rotate the signing key."""

from __future__ import annotations

import json

import click

from .cli_common import fail, load_app

ENDPOINTS = {"login": "/lti/login", "launch": "/lti/launch", "jwks": "/lti/jwks"}


def _db():  # type: ignore[no-untyped-def]
    from .migrate import upgrade

    app = load_app()
    upgrade(app.config["DATABASE_URL"])
    return app.extensions["quizengine.db"]


@click.group()
def lti() -> None:
    """LTI 1.3: platforms (LMSs) that launch this tool, and the tool's signing keys.

    \b
    Give the LMS these URLs (BASE: where the app is served, e.g. https://quiz.example.edu):
      OIDC login initiation  BASE/lti/login
      redirect / launch URL  BASE/lti/launch   (also the deep-linking URL)
      public keys (JWKS)     BASE/lti/jwks
    """


@lti.command("add-platform")
@click.option("--issuer", required=True, help="The platform's issuer (iss), e.g. https://canvas.instructure.com.")
@click.option("--client-id", required=True, help="The client id the platform gave this tool.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True,
              help="A deployment id of the tool in the platform (repeat for several).")
@click.option("--auth-url", required=True, help="The platform's OIDC authorization endpoint.")
@click.option("--token-url", required=True, help="The platform's OAuth2 token endpoint (for scores and rosters).")
@click.option("--jwks-url", required=True, help="The platform's public keys (JWKS).")
@click.option("--frame-origin", "frame_origins", multiple=True,
              help="An origin allowed to frame the tool (repeatable; default: those of the issuer and auth URL).")
def add_platform(issuer: str, client_id: str, deployment_ids: tuple[str, ...], auth_url: str, token_url: str,
                 jwks_url: str, frame_origins: tuple[str, ...]) -> None:
    """Register a platform, or add deployments to (and update the URLs of) a registered one."""
    from .lti import outbox, registry

    try:
        with _db().write() as s:
            p = registry.add_platform(s, issuer, client_id, list(deployment_ids), auth_url, token_url, jwks_url,
                                      list(frame_origins), outbox.now())
            info = registry.describe(p)
    except registry.RegistryError as e:
        fail(str(e))
    click.echo(f"platform {info['id']}: {info['issuer']} client {info['client_id']}, deployments "
               f"{', '.join(info['deployment_ids'])}; may frame the tool: {' '.join(info['frame_origins'])}")


@lti.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: platforms, keys, endpoints.")
def list_platforms(as_json: bool) -> None:
    """The registered platforms and the tool's public keys (private keys are never shown)."""
    from .lti import keys, registry

    with _db().read() as s:
        platforms = [registry.describe(p) for p in registry.platforms(s)]
        found = [keys.describe(k) for k in keys.listed(s)]
    if as_json:
        click.echo(json.dumps({"platforms": platforms, "keys": found, "endpoints": ENDPOINTS}, indent=2))
        return
    for p in platforms:
        click.echo(f"{p['id']}  {p['issuer']}  client {p['client_id']}\n"
                   f"   deployments {', '.join(p['deployment_ids'])}\n   auth  {p['auth_url']}\n"
                   f"   token {p['token_url']}\n   jwks  {p['jwks_url']}\n   frame {' '.join(p['frame_origins'])}")
    if not platforms:
        click.echo("no platforms registered (quizengine lti add-platform --help)")
    for k in found:
        click.echo(f"key {k['kid']} ({k['role']}, made {k['created_at']})")
    click.echo("endpoints: " + ", ".join(f"{name} {path}" for name, path in ENDPOINTS.items()))


@lti.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key; the old one stays published in the JWKS until the next rotation."""
    from .lti import keys, outbox

    with _db().write() as s:
        key = keys.rotate(s, outbox.now())
        kid = key.kid
    click.echo(f"new signing key {kid}; the previous key is still published at /lti/jwks")
