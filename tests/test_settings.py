"""Settings come from CHAINSERVE_* environment variables."""

from pathlib import Path

import pytest

from service.settings import Settings


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINSERVE_CHAINS_DIR", "/srv/chains")
    monkeypatch.setenv("CHAINSERVE_BEDROCK_ENDPOINT_URL", "http://127.0.0.1:4010")
    monkeypatch.setenv("CHAINSERVE_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CHAINSERVE_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("CHAINSERVE_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.chains_dir == Path("/srv/chains")
    assert settings.bedrock_endpoint_url == "http://127.0.0.1:4010"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.max_body_bytes == 4096
    assert settings.log_level == "debug"


def test_defaults() -> None:
    settings = Settings()
    assert settings.chains_dir == Path("chains")
    assert settings.bedrock_endpoint_url is None
    assert settings.cors_origins == []


def test_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINSERVE_MAX_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="max_concurrency"):
        Settings()


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINSERVE_ACCESS_LOG", "")
    monkeypatch.setenv("CHAINSERVE_MAX_BODY_BYTES", "")
    settings = Settings()
    assert settings.access_log is False
    assert settings.max_body_bytes == 6_291_456  # Lambda's payload limit: one 3.75 MB image


def test_metrics_on_means_emf_on_lambda_and_prometheus_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No Lambda runtime runs here: its variables stand in (detection reads nothing else).
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHAINSERVE_METRICS", "on")
    assert Settings().metrics == "prometheus"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chainserve")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    assert Settings().metrics == "emf"
    monkeypatch.setenv("CHAINSERVE_METRICS", "prometheus")  # an explicit choice stands
    assert Settings().metrics == "prometheus"
