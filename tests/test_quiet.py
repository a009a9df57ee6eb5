"""A gateway with the embedded guard policy starts and answers without noise.

Before: ~25 warnings at start-up and a Presidio warning on every request ("Entity CARDINAL is not
mapped to a Presidio entity"), and the review page said ``text/html; charset=utf-8; charset=utf-8``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningGateway

POLICIES = Path(__file__).resolve().parents[1] / "guardrails"


def test_the_embedded_guard_policy_logs_no_warnings(
    make_gateway: Callable[..., RunningGateway], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        gw = make_gateway(guards={"enabled": True, "policy_dir": str(POLICIES), "hash_salt": "salt"})
        # numbers, money, a product and an event: spaCy labels Presidio has no entity for
        answer = gw.client().chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": "I bought 3 Kindle readers for $240 at the 2024 Olympics, twice."}],
        )
    assert answer.choices[0].message.content
    noisy = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert not noisy, noisy


def test_html_and_text_answers_name_their_charset_once(make_gateway: Callable[..., RunningGateway]) -> None:
    gw = make_gateway()
    with gw.admin() as admin:
        pages = {
            "/admin/login": httpx.get(f"{gw.url}/admin/login"),
            "/admin/review": admin.get("/admin/review"),
            "/admin/guard-events/export?format=csv": admin.get("/admin/guard-events/export?format=csv"),
            "/metrics": admin.get("/metrics"),
        }
    for path, response in pages.items():
        assert response.status_code == 200, path
        content_type = response.headers["content-type"]
        assert content_type.count("charset") == 1, (path, content_type)
        assert "charset=utf-8" in content_type
