"""Chain file → runnable: what reaches Bedrock's wire for each model key."""

import json
from pathlib import Path
from typing import Any

import pytest

from service.chains.catalog import Catalog
from service.emulator.server import Emulator
from service.settings import Settings

CHAIN = """\
model:
  provider: {provider}
  id: anthropic.claude-3-haiku-20240307-v1:0
  params: {{max_tokens: 50, top_p: 0.9}}
  additional_request_fields: {{top_k: 50}}
prompt:
  messages:
    - user: "{{text}}"
inputs:
  text: {{}}
"""


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        # Converse: model-specific fields go beside inferenceConfig, as Bedrock documents.
        ("bedrock-converse", lambda body: body["additionalModelRequestFields"]),
        # InvokeModel: the model's own body takes them at the top level.
        ("bedrock", lambda body: {"top_k": body["top_k"]}),
    ],
)
def test_additional_request_fields_reach_bedrock(
    tmp_path: Path, bedrock: Emulator, provider: str, expected: Any
) -> None:
    (tmp_path / "k.yaml").write_text(CHAIN.format(provider=provider))
    catalog = Catalog(Settings(chains_dir=tmp_path, bedrock_endpoint_url=bedrock.url))
    catalog.load()
    sent: list[dict[str, Any]] = []
    client = catalog.get("k").runnable.steps[1].client  # type: ignore[attr-defined]

    def capture(request: Any, **kwargs: Any) -> None:
        sent.append(json.loads(request.body))

    client.meta.events.register("before-send.bedrock-runtime", capture)
    try:
        assert "".join(catalog.get("k").runnable.stream({"text": "hi"})).endswith("user: hi")
    finally:
        client.meta.events.unregister("before-send.bedrock-runtime", capture)
    [body] = sent
    assert expected(body) == {"top_k": 50}
