"""Service settings, read from ``CHAINSERVE_*`` environment variables.

AWS region and credentials are not here on purpose: they come from the standard AWS
environment (``AWS_REGION``, ``AWS_PROFILE``, the Lambda role …) and from chain files.
"""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    # An empty variable (VAR= in a template or shell) means unset, not an invalid value.
    model_config = SettingsConfigDict(
        env_prefix="CHAINSERVE_", extra="ignore", env_ignore_empty=True
    )

    chains_dir: Path = Path("chains")
    """Folder of ``*.yaml`` chain files."""

    bedrock_endpoint_url: str | None = None
    """Send every Bedrock Runtime call here (the emulator, a VPC endpoint); unset = AWS."""

    bedrock_read_timeout: float = Field(60.0, gt=0)
    """Seconds botocore waits for the model's next bytes before the request fails with 504."""

    bedrock_connect_timeout: float = Field(10.0, gt=0)

    bedrock_max_attempts: int = Field(3, ge=1)
    """Total attempts per Bedrock call, including botocore's retries of throttling."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    log_format: Literal["json", "text"] = Field(
        default_factory=lambda: "json" if on_lambda() else "text"
    )
    """``json``: one JSON object a line (service/observability/logs.py); default json on
    Lambda, else text."""

    access_log: bool = False
    """One log line per request from uvicorn (the service logs its own line per chain run)."""

    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed to call from a browser: comma-separated, or ``*``."""

    max_body_bytes: int = Field(6_291_456, ge=1024)
    """Largest request body accepted (413 above). 6 MiB: Lambda's own request payload limit,
    and room for one image of ``max_image_bytes`` (3.75 MB is 5 MB as base64 in JSON)."""

    max_image_bytes: int = Field(3_750_000, ge=1)
    """Largest image input, in decoded bytes (422 above); default Bedrock's per-image limit."""

    max_chain_file_bytes: int = Field(1_048_576, ge=1024)
    """Largest chain file loaded; a larger one is that file's error, never read in full."""

    max_header_bytes: int = Field(65_536, ge=1024)
    """Largest request head (request line and headers); 431 and close above (service/server.py)."""

    header_timeout: float = Field(10.0, gt=0)
    """Seconds to receive a whole request head from its first byte; 408 and close past it."""

    body_timeout: float = Field(30.0, gt=0)
    """Seconds to receive a whole request body after its head; 408 and close past it."""

    keep_alive_timeout: float = Field(5.0, gt=0)
    """Seconds an idle connection (before a request or between requests) stays open."""

    max_input_length: int = Field(100_000, ge=1)
    """Longest string input, in characters, for inputs that set no ``max_length`` themselves."""

    max_batch_size: int = Field(32, ge=1)
    """Most inputs in one ``/batch`` request."""

    max_concurrency: int = Field(1024, ge=1)
    """Most chain runs at once (each holds a worker thread); 503 past it."""

    retry_after_seconds: int = Field(2, ge=1)
    """``Retry-After`` sent with 429 and 503 when Bedrock gives none."""

    api_keys: Annotated[list[SecretStr], NoDecode] = []
    """API keys clients must send (x-api-key or Authorization: Bearer); comma-separated."""

    api_keys_ssm_parameter: str | None = None
    """Name of an SSM parameter (SecureString) holding API keys; read once at start-up."""

    api_keys_secret_id: str | None = None
    """Name or ARN of a Secrets Manager secret holding API keys; read once at start-up."""

    docs: bool = True
    """Serve ``/docs`` and ``/openapi.json`` (without a key); false: both 404."""

    signed_url_max_seconds: int = Field(3600, ge=1)
    """Longest life, in seconds, of a signed stream URL (``POST /chains/{name}/stream-url``)."""

    metrics: Literal["off", "on", "prometheus", "emf"] = "off"
    """``prometheus``: serve ``GET /metrics`` in Prometheus' text format
    (service/observability/prometheus.py); ``emf``: one CloudWatch Embedded Metric Format record
    per run on stdout, for Lambda (service/observability/emf.py); ``on``: ``emf`` on Lambda,
    else ``prometheus`` (read as that value: ``Settings().metrics`` is never ``on``)."""

    metrics_namespace: str = Field(
        "chainserve", min_length=1, max_length=255, pattern=r"^[0-9A-Za-z.\-_/#: ]+$"
    )
    """The CloudWatch namespace of EMF metrics (CloudWatch's characters; not ``AWS/…``)."""

    metrics_public: bool = False
    """With API keys configured, let ``/metrics`` be scraped without a key."""

    otel: bool = False
    """Trace requests and runs with OpenTelemetry, exported over OTLP as the standard
    ``OTEL_*`` variables say (service/observability/tracing.py; ``pip install
    'chainserve[otel]'``)."""

    log_prompts: bool = False
    """Put prompt text (the messages sent to the model) and the model's reply in run log lines.
    Off: no log line ever holds prompt or reply text."""

    reload: bool = False
    """Watch ``chains_dir`` and reload chain files when they change (``chainserve dev``)."""

    @field_validator("metrics")
    @classmethod
    def _where_we_run(cls, value: str) -> str:
        if value == "on":
            return "emf" if on_lambda() else "prometheus"
        return value

    @field_validator("metrics_namespace")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        if value.startswith("AWS/"):
            raise ValueError("AWS/ namespaces are AWS's own: choose another, e.g. chainserve")
        if value.startswith(":"):
            raise ValueError("a CloudWatch namespace cannot start with ':'; e.g. chainserve")
        return value

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",") if item.strip()]
            if not items and info.field_name == "api_keys":  # "," or " ": not an open server
                raise ValueError(
                    "holds no API key, only commas or spaces: set keys, or unset "
                    "CHAINSERVE_API_KEYS to run without keys"
                )
            return items
        return value


def on_lambda() -> bool:
    """Running in AWS Lambda: the function's name and the runtime API (or task root), as the
    Lambda Web Adapter's child process inherits them. Either alone could be a developer's shell."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and bool(
        os.environ.get("AWS_LAMBDA_RUNTIME_API") or os.environ.get("LAMBDA_TASK_ROOT")
    )
