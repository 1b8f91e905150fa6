"""`quizengine lti add-platform | list | rotate-key` through click's runner."""

from __future__ import annotations

import json

import pytest

from quizengine.cli import main

ARGS = ["lti", "add-platform", "--issuer", "https://canvas.instructure.com", "--client-id", "10000000000001",
        "--deployment-id", "1:abc", "--auth-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--token-url", "https://sso.canvaslms.com/login/oauth2/token",
        "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks"]


def test_add_platform_list_and_rotate_never_print_a_private_key(runner, env):
    r = runner.invoke(main, ARGS + ["--frame-origin", "https://school.instructure.com"])
    assert r.exit_code == 0, r.output
    assert "may frame the tool: https://school.instructure.com" in r.stdout
    # the same issuer and client id again adds a deployment, not a second platform
    r = runner.invoke(main, ARGS[:6] + ["--deployment-id", "2:def"] + ARGS[8:])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["lti", "list", "--json"])
    data = json.loads(r.stdout)
    [p] = data["platforms"]
    assert p["deployment_ids"] == ["1:abc", "2:def"] and p["frame_origins"] == ["https://school.instructure.com"]
    assert data["endpoints"] == {"login": "/lti/login", "launch": "/lti/launch", "jwks": "/lti/jwks"}
    [key] = data["keys"]
    assert key["role"] == "current" and set(key["public_jwk"]) == {"kty", "n", "e", "kid", "alg", "use"}
    r = runner.invoke(main, ["lti", "rotate-key"])
    assert r.exit_code == 0 and key["kid"] not in r.stdout
    text = runner.invoke(main, ["lti", "list"]).stdout
    assert f"key {key['kid']} (previous" in text and "(current" in text
    for out in (text, runner.invoke(main, ["lti", "list", "--json"]).stdout):
        assert "PRIVATE" not in out and '"d"' not in out and '"p"' not in out


# what a mistyped registration gets: exit 2 and the option to fix
BAD = [
    (["--auth-url", "http://lms.example.edu/auth"], "--auth-url 'http://lms.example.edu/auth': use https"),
    (["--jwks-url", "not a url"], "--jwks-url 'not a url': give an absolute https:// URL"),
    (["--frame-origin", "https://x.edu; script-src *"], "--frame-origin 'https://x.edu; script-src *'"),
    (["--issuer", ""], "--issuer ''"),
]


@pytest.mark.parametrize("change,message", BAD, ids=["plain-http", "not-a-url", "csp-injection", "no-issuer"])
def test_bad_registration_is_refused_with_the_option_named(runner, env, change, message):
    args = list(ARGS)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += change
    r = runner.invoke(main, args)
    assert r.exit_code == 2 and message in r.stderr
    assert json.loads(runner.invoke(main, ["lti", "list", "--json"]).stdout)["platforms"] == []
