"""``ApiSettings`` from the environment, and the settings the application factory applies."""

from __future__ import annotations

import pydantic
import pytest
from api_support import Api, api_settings
from fastapi.testclient import TestClient

from prismq.api import ApiSettings, create_app
from prismq.api.settings import environment_variables


def test_settings_are_read_from_prismq_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRISMQ_DATABASE_URL", "sqlite:////srv/prismq/queue.db")
    monkeypatch.setenv("PRISMQ_API_MAX_LIST_LIMIT", "100")
    monkeypatch.setenv("PRISMQ_API_MAX_WAIT_SECONDS", "15")
    monkeypatch.setenv("PRISMQ_API_DOCS_ENABLED", "false")
    monkeypatch.setenv("PRISMQ_API_ROOT_PATH", "/queue")

    settings = ApiSettings()

    assert settings.database_url == "sqlite:////srv/prismq/queue.db"
    assert (settings.api_max_list_limit, settings.api_max_wait_seconds) == (100, 15.0)
    assert (settings.api_docs_enabled, settings.api_root_path) == (False, "/queue")


def test_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in environment_variables():
        monkeypatch.delenv(name, raising=False)

    settings = ApiSettings()

    assert settings.database_url is None  # the core's default database
    assert settings.api_max_body_bytes == 1_048_576
    assert (settings.api_default_list_limit, settings.api_max_list_limit) == (50, 500)
    assert settings.api_max_wait_seconds == 60


def test_every_setting_has_a_documented_environment_variable() -> None:
    variables = environment_variables()

    assert "PRISMQ_DATABASE_URL" in variables
    assert "PRISMQ_API_MAX_BODY_BYTES" in variables
    assert len(variables) == len(ApiSettings.model_fields)
    assert all(description for description in variables.values())


@pytest.mark.parametrize(
    "values",
    [
        {"api_default_list_limit": 60, "api_max_list_limit": 50},
        {"api_wait_poll_seconds": 2, "api_wait_max_poll_seconds": 1},
        {"api_max_list_limit": 501},
        {"api_max_wait_seconds": 0},
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ApiSettings(**values)


def test_the_wait_limit_is_enforced_and_documented(api: Api, database_url: str) -> None:
    app = create_app(api_settings(database_url, api_max_wait_seconds=5), database=api.db)
    with TestClient(app) as client:
        over = client.get("/api/queue/tasks/1/wait", params={"timeout": 6}, headers=api.reader)
        schema = client.get("/openapi.json").json()

    assert over.status_code == 422
    [timeout] = [
        parameter
        for parameter in schema["paths"]["/api/queue/tasks/{task_id}/wait"]["get"]["parameters"]
        if parameter["name"] == "timeout"
    ]
    assert (timeout["schema"]["maximum"], timeout["schema"]["default"]) == (5, 5)


@pytest.mark.parametrize("prefix", ["", "/queue"], ids=["proxy-strips-the-prefix", "kept"])
def test_a_root_path_serves_the_api_behind_a_prefix(
    api: Api, database_url: str, prefix: str
) -> None:
    app = create_app(api_settings(database_url, api_root_path="/queue"), database=api.db)
    with TestClient(app) as client:
        health = client.get(f"{prefix}/healthz")
        schema = client.get(f"{prefix}/openapi.json").json()

    assert health.status_code == 200
    assert {"url": "/queue"} in schema["servers"]
