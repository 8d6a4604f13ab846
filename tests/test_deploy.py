"""The deployment files, checked offline: cfn-lint, the templates against the app and each
other, IAM least privilege, the Dockerfile, and the package.

No AWS account is reachable here, so nothing is deployed; what AWS would read is read here.
"""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.deploy.package import ARCHITECTURES, LAMBDA_PYTHON
from service.settings import Settings
from tests.conftest import REPO
from tests.template import Template

TEMPLATES = [REPO / "template.yaml", REPO / "template-image.yaml"]
LWA_LAYER = "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayer{}:27"


def test_cfn_lint_is_clean() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([cfn_lint, *map(str, TEMPLATES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_adapter_settings_agree_with_the_app(path: Path) -> None:
    env = Template(path).function()["Properties"]["Environment"]["Variables"]
    # An unknown invoke mode makes the adapter silently buffer: it must be exactly this.
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    from service.protocols.routes import router

    health = env["AWS_LWA_READINESS_CHECK_PATH"]
    assert health in {route.path for route in router.routes}  # type: ignore[attr-defined]
    from service.auth import EXEMPT_PATHS

    assert health in EXEMPT_PATHS  # readiness must pass without an API key
    run_sh = (REPO / "run.sh").read_text()
    assert '--port "${PORT:-8080}"' in run_sh and env["PORT"] == "8080"
    for name in env:
        if name.startswith("CHAINSERVE_"):  # a typo here would be ignored by the app
            assert name.removeprefix("CHAINSERVE_").lower() in Settings.model_fields, name
    assert (REPO / env["CHAINSERVE_CHAINS_DIR"]).is_dir()


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_function_url_streams_and_is_signed_by_default(path: Path) -> None:
    url = Template(path).function()["Properties"]["FunctionUrlConfig"]
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "AWS_IAM"
    assert "Cors" not in url  # no origins by default
    with_cors = Template(path, CorsOrigins="https://app.example").function()
    cors = with_cors["Properties"]["FunctionUrlConfig"]["Cors"]
    assert cors["AllowOrigins"] == ["https://app.example"]
    assert "x-api-key" in cors["AllowHeaders"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("parameters", "deploys"),
    [
        ({}, True),
        ({"AuthType": "NONE"}, False),  # a public URL with no API keys is refused
        ({"AuthType": "NONE", "ApiKeysSsmParameter": "/chainserve/keys"}, True),
        (
            {"AuthType": "NONE", "ApiKeysSecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:k"},
            True,
        ),
        ({"AuthType": "AWS_IAM", "ApiKeysSsmParameter": "/chainserve/keys"}, True),
    ],
)
def test_public_url_requires_app_api_keys(
    path: Path, parameters: dict[str, str], deploys: bool
) -> None:
    template = Template(path, **parameters)
    assert template.rules_pass() is deploys
    if deploys and "ApiKeysSsmParameter" in parameters:
        env = template.function()["Properties"]["Environment"]["Variables"]
        assert env["CHAINSERVE_API_KEYS_SSM_PARAMETER"] == "/chainserve/keys"
        assert "CHAINSERVE_API_KEYS_SECRET_ID" not in env


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_iam_is_least_privilege(path: Path) -> None:
    template = Template(path)
    [policy] = template.function()["Properties"]["Policies"]
    [bedrock] = policy["Statement"]  # nothing else without API key stores
    assert sorted(bedrock["Action"]) == [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    ]
    assert bedrock["Resource"] == template.parameters["ModelArns"].split(",")
    keyed = Template(
        path,
        ApiKeysSsmParameter="/chainserve/keys",
        ApiKeysSecretArn="arn:aws:secretsmanager:us-east-1:111122223333:secret:k",
    )
    statements = keyed.function()["Properties"]["Policies"][0]["Statement"]
    resources = {s["Sid"]: (s["Action"], s["Resource"]) for s in statements}
    assert resources["ReadApiKeysParameter"] == (
        "ssm:GetParameter",
        "arn:aws:ssm:us-east-1:111122223333:parameter/chainserve/keys",
    )
    assert resources["ReadApiKeysSecret"] == (
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:k*",
    )
    for action, _ in resources.values():
        assert "*" not in str(action)


def test_default_model_arns_cover_the_shipped_chains() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "models", "--arns", str(REPO / "chains")],
        capture_output=True,
        text=True,
        check=True,
    )
    needed = set(result.stdout.strip().split(","))
    default = set(Template(TEMPLATES[0]).parameters["ModelArns"].split(","))
    assert needed <= default


def test_zip_template_uses_the_adapter_layer_for_its_architecture() -> None:
    for arch, layer in (("arm64", "Arm64"), ("x86_64", "X86")):
        function = Template(REPO / "template.yaml", Architecture=arch).function()["Properties"]
        assert function["Layers"] == [LWA_LAYER.format(layer)]
        assert function["Architectures"] == [arch]
        assert function["Handler"] == "run.sh"
        assert function["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
        assert function["Runtime"] == f"python{LAMBDA_PYTHON}"
    assert set(ARCHITECTURES) == {"arm64", "x86_64"}
    assert Template(REPO / "template.yaml").parameters["Architecture"] == "arm64"


def test_snapstart_is_opt_in() -> None:
    off = Template(REPO / "template.yaml").function()["Properties"]
    on = Template(REPO / "template.yaml", SnapStart="true").function()["Properties"]
    assert off["SnapStart"] == {"ApplyOn": "None"}
    assert on["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert on["AutoPublishAlias"] == "live"


def test_image_template_differs_only_in_packaging() -> None:
    zip_fn = Template(REPO / "template.yaml").function()
    image_fn = Template(REPO / "template-image.yaml").function()
    packaging = {"CodeUri", "Handler", "Runtime", "Layers", "SnapStart", "PackageType"}

    def strip(props: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if k not in packaging}

    zip_props, image_props = strip(zip_fn["Properties"]), strip(image_fn["Properties"])
    del zip_props["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert zip_props == image_props
    assert image_fn["Properties"]["PackageType"] == "Image"
    zip_raw, image_raw = Template(TEMPLATES[0]).raw, Template(TEMPLATES[1]).raw
    assert set(zip_raw["Parameters"]) - set(image_raw["Parameters"]) == {"SnapStart"}
    assert zip_raw["Outputs"] == image_raw["Outputs"]
    assert zip_raw["Resources"]["LogGroup"] == image_raw["Resources"]["LogGroup"]


def test_log_group_and_outputs() -> None:
    template = Template(REPO / "template.yaml")
    logs = template.evaluate(template.raw["Resources"]["LogGroup"])
    assert logs["Properties"]["RetentionInDays"] == 30
    assert template.function()["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": "LogGroup"}}
    outputs = template.raw["Outputs"]
    assert outputs["FunctionUrl"]["Value"] == {
        "Fn::GetAtt": ["ChainserveFunctionUrl", "FunctionUrl"]
    }
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": ["ChainserveFunction", "Arn"]}
    assert outputs["FunctionAliasArn"]["Value"] == {"Ref": "ChainserveFunction.Alias"}
    assert int(template.parameters["MemorySize"]) >= 256


def test_dockerfile_copies_what_exists_and_matches_the_template() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        "COPY --from=public.ecr.aws/awsguru/aws-lambda-adapter:1.0.0 /lambda-adapter "
        "/opt/extensions/lambda-adapter" in dockerfile
    )
    for source in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (REPO / source).exists(), source
    assert re.search(r'^CMD \["\./run\.sh"\]', dockerfile, re.M)
    assert re.search(rf"^FROM \S+/python:{LAMBDA_PYTHON}-slim$", dockerfile, re.M)
    env = Template(REPO / "template-image.yaml").function()["Properties"]["Environment"][
        "Variables"
    ]
    for name in (
        "PORT",
        "AWS_LWA_INVOKE_MODE",
        "AWS_LWA_READINESS_CHECK_PATH",
        "CHAINSERVE_CHAINS_DIR",
    ):
        assert f"{name}={env[name]}" in dockerfile, name


def test_makefile_builds_what_sam_asks_for() -> None:
    """`sam build` calls `make build-ChainserveFunction` with ARTIFACTS_DIR (BuildMethod makefile)."""
    metadata = Template(REPO / "template.yaml").function()["Metadata"]
    assert metadata == {"BuildMethod": "makefile"}
    dry_run = subprocess.run(
        ["make", "-n", "build-ChainserveFunction", "ARTIFACTS_DIR=/tmp/artifacts", "ARCH=x86_64"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '-m service.deploy.package --arch x86_64 --into "/tmp/artifacts"' in dry_run.stdout


def _pins(lock: Path) -> dict[str, str]:
    pairs = (line.split("==") for line in lock.read_text().splitlines() if "==" in line)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pairs}


def test_the_otel_lock_pins_what_the_extra_adds() -> None:
    """requirements-otel.lock: the `otel` extra's packages that requirements.lock lacks, at
    the versions the tests run against (installed from the `test` extra, which includes it)."""
    from importlib.metadata import version

    from service.deploy.package import EXTRA_LOCKS, LOCK

    base, otel = _pins(LOCK), _pins(EXTRA_LOCKS["otel"])
    assert not set(base) & set(otel)
    assert {"opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= set(otel)
    assert base["opentelemetry-api"]  # shared with FastAPI: pinned once, in the function's lock
    assert {name: version(name) for name in otel} == otel


def test_the_otel_extra_reaches_the_package(tmp_path: Path) -> None:
    """`chainserve package --extra otel` installs the extra's lock on top of the function's
    (from the locked wheels, offline, as tests/test_lambda.py builds); `make` passes EXTRA."""
    wheels = REPO / ".venv" / "wheels"
    if not any(wheels.glob("opentelemetry_sdk-*.whl")):
        pytest.fail("no locked wheels in .venv/wheels: run the tests with `make test`")
    into = tmp_path / "task"
    command = [sys.executable, "-m", "service.deploy.package", "--arch", "native"]
    built = subprocess.run(
        [*command, "--wheels", str(wheels), "--into", str(into), "--extra", "otel"],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert (into / "opentelemetry" / "sdk" / "trace" / "__init__.py").is_file()
    assert (into / "opentelemetry" / "exporter" / "otlp" / "proto" / "http").is_dir()
    dry_run = subprocess.run(
        ["make", "-n", "build-ChainserveFunction", "ARTIFACTS_DIR=/tmp/artifacts", "EXTRA=otel"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '--into "/tmp/artifacts" --extra otel' in dry_run.stdout
