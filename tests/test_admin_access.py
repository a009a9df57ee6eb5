"""One rule for every /admin/* API route, and a start-up line saying how to reach them.

No credentials (no key, or a caller served as ``anonymous``) is 401 ``missing_api_key``; a valid key
that is not the admin key is 403 ``admin_required``. Before, ``/admin/guard-events`` answered 401
where ``/admin/requests`` answered 403 for the same missing key on a gateway allowing anonymous
calls. The routes are read from the app itself, so a new admin route is covered without editing
this file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningGateway

#: the browser pages: without a session they redirect to the sign-in form (tests/test_review_page.py)
BROWSER_PAGES = ("/admin/login", "/admin/logout", "/admin/review")


def admin_api_routes(gw: RunningGateway) -> list[tuple[str, str]]:
    app = gw.server.config.app
    found = []
    for route in app.routes:
        if not route.path.startswith("/admin") or route.path.startswith(BROWSER_PAGES):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for handler in route.route_handlers:
            found.extend((method, path) for method in handler.http_methods if method not in ("HEAD", "OPTIONS"))
    return sorted(found)


AUTH_MODES = {
    "anonymous on, admin key set": {"admin_key": ADMIN_KEY, "allow_anonymous": True},
    "anonymous on, no admin key (the embedded defaults)": {"admin_key": "", "allow_anonymous": True},
    "anonymous off": {"admin_key": ADMIN_KEY, "allow_anonymous": False},
}


@pytest.mark.parametrize("auth", AUTH_MODES.values(), ids=AUTH_MODES.keys())
def test_every_admin_route_answers_a_missing_key_alike(
    make_gateway: Callable[..., RunningGateway], auth: dict[str, object]
) -> None:
    gw = make_gateway(auth=auth)
    routes = admin_api_routes(gw)
    paths = {path for _, path in routes}
    assert {"/admin/keys", "/admin/requests", "/admin/guard-events", "/admin/cache"} <= paths, paths
    secret, _ = gw.gateway.keys.create("not-admin")
    gw.gateway.keys.refresh()
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        for method, path in routes:
            for presented in (None, "unused-on-loopback"):
                headers = {"authorization": f"Bearer {presented}"} if presented else {}
                response = client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, presented, response.text)
                if presented is None or auth["allow_anonymous"]:
                    error = response.json()["error"]
                    assert error["code"] == "missing_api_key", (method, path, presented)
                    assert "admin key" in error["message"]
                    if not auth["admin_key"]:
                        assert "LLMGW_ADMIN_KEY" in error["message"]
            denied = client.request(method, path, headers={"authorization": f"Bearer {secret}"})
            assert denied.status_code == 403, (method, path, denied.text)
            assert denied.json()["error"]["code"] == "admin_required"
            if auth["admin_key"]:
                allowed = client.request(method, path, headers={"authorization": f"Bearer {ADMIN_KEY}"})
                assert allowed.status_code not in (401, 403), (method, path, allowed.text)


@pytest.mark.parametrize("admin_key", ["", ADMIN_KEY], ids=["no admin key", "admin key set"])
def test_start_up_says_how_to_reach_the_admin_api_and_review_page(
    make_gateway: Callable[..., RunningGateway], caplog: pytest.LogCaptureFixture, admin_key: str
) -> None:
    with caplog.at_level(logging.INFO, logger="llmgw.app"):
        make_gateway(auth={"admin_key": admin_key, "allow_anonymous": True})
    hints = [r.getMessage() for r in caplog.records if r.name == "llmgw.app" and "/admin/review" in r.getMessage()]
    assert len(hints) == 1, [r.getMessage() for r in caplog.records]
    assert "/admin/" in hints[0] and "Authorization: Bearer" in hints[0]
    if admin_key:
        assert admin_key not in hints[0], "the admin key itself is never logged"
    else:
        assert "closed" in hints[0] and "LLMGW_ADMIN_KEY=" in hints[0]
