"""The checked-in OpenAPI document is the one the app serves (regenerate with scripts/openapi)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.server.app import create_app
from harness.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def test_checked_in_openapi_is_current() -> None:
    served = create_app(Settings.from_env()).openapi()
    assert json.loads(DOC.read_text()) == served, "docs/openapi.json is stale: run scripts/openapi"


def test_every_contract_route_is_documented() -> None:
    paths = json.loads(DOC.read_text())["paths"]
    for path in (
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/events",
        "/v1/runs/{run_id}/outputs",
        "/v1/runs/{run_id}/cancel",
        "/v1/requests",
        "/v1/analyze",
        "/v1/check",
        "/v1/templates",
        "/v1/templates/{name}",
        "/v1/history",
        "/v1/stats",
        "/v1/review",
        "/v1/review/{record_id}",
        "/v1/review/{record_id}/diff",
        "/v1/review/{record_id}/approve",
        "/v1/review/{record_id}/reject",
        "/v1/review/{record_id}/promote",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    run_body = paths["/v1/runs"]["post"]["requestBody"]["content"]
    assert set(run_body) == {"application/json", "multipart/form-data"}
