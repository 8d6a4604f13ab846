"""The output section at load time: $ref files, schema checks and what langchain-aws can do
with each model, every refusal pinned to file:line with the fix; and the method each model gets."""

import json
import os
from pathlib import Path

import pytest

from service.chains.loader import ChainFileErrors, load_file
from service.chains.model_spec import ModelSpec
from service.chains.models import BedrockClients
from service.chains.runnable import Assembly
from service.chains.spec import OutputSpec
from service.chains.structured import choose_method
from service.settings import Settings

CHAIN = """\
model:
  provider: {provider}
  id: {model}
prompt:
  messages:
    - user: "{{text}}"
inputs:
  text: {{}}
output:
{output}
"""
OBJECT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def load(
    folder: Path,
    output: str,
    model: str = "anthropic.claude-3-haiku-20240307-v1:0",
    provider: str = "bedrock-converse",
) -> Exception | object:
    path = folder / "extract.yaml"
    path.write_text(CHAIN.format(model=model, output=output, provider=provider))
    try:
        return load_file(path)
    except ChainFileErrors as exc:
        return exc


def error(folder: Path, output: str, **model: str) -> str:
    found = load(folder, output, **model)
    assert isinstance(found, ChainFileErrors), "expected the file to be refused"
    [only] = found.errors
    return f"{only.line}: {only.message}"


def test_ref_reads_the_json_file_beside_the_chain(tmp_path: Path) -> None:
    (tmp_path / "contact.schema.json").write_text(json.dumps(OBJECT))
    spec = load(tmp_path, "  schema: {$ref: contact.schema.json}")
    assert not isinstance(spec, Exception)
    assert spec.output.json_schema == OBJECT  # type: ignore[attr-defined]


def test_ref_errors_name_the_ref_line(tmp_path: Path) -> None:
    ref = "  schema:\n    $ref: {}"
    assert error(tmp_path, ref.format("missing.json")).startswith(
        "11: $ref 'missing.json': cannot read"
    )
    assert "outside the chains folder" in error(tmp_path, ref.format("../x.json"))
    assert "outside the chains folder" in error(tmp_path, ref.format("/etc/passwd.json"))
    os.symlink("/etc/hostname", tmp_path / "link.json")
    assert "outside the chains folder" in error(tmp_path, ref.format("link.json"))
    assert "a .json file beside the chain file" in error(tmp_path, ref.format("other.yaml"))
    (tmp_path / "broken.json").write_text('{"type": "object",\n "properties": }')
    assert error(tmp_path, ref.format("broken.json")) == (
        "11: $ref 'broken.json' is not JSON: Expecting value at line 2 column 16; fix the file "
        "(a JSON Schema, written as JSON)"
    )
    (tmp_path / "list.json").write_text("[]")
    assert "holds an array, not a JSON Schema object" in error(tmp_path, ref.format("list.json"))
    (tmp_path / "big.json").write_bytes(b" " * 1_048_577)
    assert "the file is 1,048,577 bytes" in error(tmp_path, ref.format("big.json"))
    (tmp_path / "latin1.json").write_bytes(b'{"title": "caf\xe9"}')
    assert "UTF-8" in error(tmp_path, ref.format("latin1.json"))
    os.mkfifo(tmp_path / "fifo.json")
    assert "a FIFO" in error(tmp_path, ref.format("fifo.json"))
    with_siblings = "  schema:\n    $ref: x.json\n    type: object"
    assert "stands alone; move type into it" in error(tmp_path, with_siblings)


def test_schema_errors_name_the_schema_line(tmp_path: Path) -> None:
    invalid = "  schema:\n    type: object\n    properties:\n      age: {type: integr}"
    message = error(tmp_path, invalid)
    assert message.startswith("10: not a valid JSON Schema: at #/properties/age/type: 'integr'")
    not_object = "  schema: {type: array, items: {type: string}}"
    assert "top level must be type: object" in error(tmp_path, not_object)
    remote = "  schema: {type: object, properties: {a: {$ref: 'other.json#/a'}}}"
    assert "$ref 'other.json#/a' points outside the schema" in error(tmp_path, remote)
    date = "  schema: {type: object, properties: {a: {const: 2024-01-01}}}"
    assert "a YAML date" in error(tmp_path, date)
    local = (
        "  schema:\n    type: object\n    properties: {a: {$ref: '#/$defs/a'}}\n    $defs: {a: {}}"
    )
    assert not isinstance(load(tmp_path, local), Exception)


def test_what_langchain_aws_cannot_do_is_refused(tmp_path: Path) -> None:
    schema = f"  schema: {json.dumps(OBJECT)}"
    # ChatBedrock (InvokeModel) has structured output for Claude only, and no json_schema.
    llama = error(tmp_path, schema, model="meta.llama3-1-70b-instruct-v1:0", provider="bedrock")
    assert "has no structured output" in llama and "use provider: bedrock-converse" in llama
    assert llama.startswith("2: ")  # model.provider's line
    method = error(tmp_path, f"{schema}\n  method: json_schema", provider="bedrock")
    assert method.startswith("11: ") and "has no json_schema structured output" in method
    # A Converse model langchain-aws cannot force to call the tool: its reply could be text.
    forced = error(tmp_path, schema, model="meta.llama3-1-70b-instruct-v1:0")
    assert forced.startswith("9: ") and "cannot force model" in forced
    assert "(only tool_choice auto)" in forced and "output.method: json_schema" in forced
    # ... unless the file says Bedrock constrains it natively.
    native = load(
        tmp_path, f"{schema}\n  method: json_schema", model="meta.llama3-1-70b-instruct-v1:0"
    )
    assert not isinstance(native, Exception)
    # A fallback is checked too, at its own item.
    fallback = CHAIN.format(
        provider="bedrock-converse",
        model="anthropic.claude-3-haiku-20240307-v1:0\n  fallbacks: [openai.gpt-oss-120b-1:0]",
        output=schema + "\n  method: function_calling",
    )
    (tmp_path / "extract.yaml").write_text(fallback)
    with pytest.raises(ChainFileErrors) as caught:
        load_file(tmp_path / "extract.yaml")
    assert "cannot force model 'openai.gpt-oss-120b-1:0'" in str(caught.value)


@pytest.mark.parametrize(
    ("model", "provider", "method"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "bedrock-converse", "function_calling"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock-converse", "json_schema"),
        ("global.anthropic.claude-opus-4-6-v1", "bedrock-converse", "json_schema"),
        ("openai.gpt-oss-120b-1:0", "bedrock-converse", "json_schema"),
        ("us.amazon.nova-pro-v1:0", "bedrock-converse", "function_calling"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "bedrock", "function_calling"),
    ],
)
def test_method_per_model(model: str, provider: str, method: str) -> None:
    output = OutputSpec.model_validate({"schema": OBJECT})
    spec = ModelSpec.model_validate({"id": model, "provider": provider})
    assert choose_method(spec, output) == method
    overridden = OutputSpec.model_validate({"schema": OBJECT, "method": "function_calling"})
    assert choose_method(spec, overridden) == "function_calling"


def test_the_bound_model_sends_what_the_method_says(tmp_path: Path) -> None:
    """The request each method makes, as langchain-aws binds it: Bedrock's outputConfig with
    the schema, or the schema as a tool the model must call."""
    clients = BedrockClients(Settings(chains_dir=tmp_path))
    native = load(tmp_path, f"  schema: {json.dumps(OBJECT)}", model="openai.gpt-oss-120b-1:0")
    bound = Assembly(native, clients).runnable.steps[1]  # type: ignore[arg-type, attr-defined]
    text_format = bound.kwargs["output_config"]["textFormat"]
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"])["required"] == ["name"]
    tool = load(tmp_path, f"  schema: {json.dumps(OBJECT)}")
    bound = Assembly(tool, clients).runnable.steps[1]  # type: ignore[arg-type, attr-defined]
    assert bound.kwargs["tool_choice"] == {"tool": {"name": "extract"}}
    assert bound.kwargs["tools"][0]["function"]["name"] == "extract"  # the chain's name


def nested(levels: int) -> dict[str, object]:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return {"type": "object", "properties": {"deep": schema}}


def test_a_schema_too_deep_or_too_big_is_refused(tmp_path: Path) -> None:
    """jsonschema's own check recurses (a RecursionError past ~150 levels) and Python's JSON
    reader too (~1000): the depth is bounded first, with file:line."""
    inline = error(tmp_path, f"  schema: {json.dumps(nested(150))}")
    assert inline.startswith("10: the schema is nested more than 64 levels deep")
    assert "$defs" in inline  # the fix
    (tmp_path / "deep.json").write_text(json.dumps(nested(150)))
    by_ref = error(tmp_path, "  schema:\n    $ref: deep.json")
    assert by_ref.startswith("10: the schema is nested more than 64 levels deep")
    (tmp_path / "deeper.json").write_text('{"items": ' * 5000 + "{}" + "}" * 5000)
    assert error(tmp_path, "  schema:\n    $ref: deeper.json").startswith(
        "11: $ref 'deeper.json': the schema is nested more than 64 levels deep"
    )
    wide = {"type": "object", "properties": {"e": {"enum": list(range(10_001))}}}
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    assert "more than 10,000 values" in error(tmp_path, "  schema: {$ref: wide.json}")
    assert not isinstance(load(tmp_path, f"  schema: {json.dumps(nested(30))}"), Exception)


def test_ref_files_keep_the_chain_file_size_limit(tmp_path: Path) -> None:
    """CHAINSERVE_MAX_CHAIN_FILE_BYTES (the loader's max_bytes) bounds $ref files too."""
    (tmp_path / "contact.schema.json").write_text(json.dumps(OBJECT) + " " * 2000)
    path = tmp_path / "extract.yaml"
    path.write_text(CHAIN.format(model=TOOL, output=REF, provider="bedrock-converse"))
    with pytest.raises(ChainFileErrors) as caught:
        load_file(path, max_bytes=1000)
    assert "$ref 'contact.schema.json'" in str(caught.value)
    assert "the file is 2 KB; chain files are at most 1000 bytes" in str(caught.value)
    assert load_file(path, max_bytes=10_000).output is not None


TOOL = "anthropic.claude-3-haiku-20240307-v1:0"
REF = "  schema: {$ref: contact.schema.json}"


def test_reasoning_that_stops_the_forced_tool_is_refused(tmp_path: Path) -> None:
    """The probes are built as the real model is: Converse's reasoning effort, ChatBedrock's
    thinking budget (in model_kwargs) — with either, langchain-aws cannot force the tool."""
    schema = f"  schema: {json.dumps(OBJECT)}\n  method: function_calling"
    effort = error(
        tmp_path, schema, model="us.anthropic.claude-sonnet-4-6\n  reasoning: {effort: high}"
    )
    assert effort.startswith("4: ")  # model.reasoning's line
    assert "cannot force model 'us.anthropic.claude-sonnet-4-6' to call the output tool while" in (
        effort
    )
    assert "(only tool_choice auto)" in effort and "remove reasoning" in effort
    budget = error(
        tmp_path,
        f"  schema: {json.dumps(OBJECT)}",
        model="anthropic.claude-3-7-sonnet-20250219-v1:0\n  params: {max_tokens: 4000}\n"
        "  reasoning: {budget_tokens: 2048}",
        provider="bedrock",
    )
    assert budget.startswith("5: ") and "while it reasons" in budget
    # Without reasoning both load.
    assert not isinstance(load(tmp_path, schema, model="us.anthropic.claude-sonnet-4-6"), Exception)
    plain = load(
        tmp_path,
        f"  schema: {json.dumps(OBJECT)}",
        model="anthropic.claude-3-7-sonnet-20250219-v1:0",
        provider="bedrock",
    )
    assert not isinstance(plain, Exception)


def test_output_patterns_use_the_input_pattern_dialect(tmp_path: Path) -> None:
    python_only = "  schema: {type: object, properties: {a: {type: string, pattern: '(?P<x>a)'}}}"
    message = error(tmp_path, python_only)
    assert message.startswith("10: pattern '(?P<x>a)' at #/properties/a:")
    names = "  schema: {type: object, patternProperties: {'\\Ax': {}}}"
    assert "patternProperties" in error(tmp_path, names)
    data = "  schema: {type: object, properties: {a: {const: {pattern: '(?P<x>a)'}}}}"
    assert not isinstance(load(tmp_path, data), Exception)  # data, not a schema


def test_a_long_chain_name_makes_a_valid_tool_name(tmp_path: Path) -> None:
    """Bedrock's tool names have at most 64 characters; chain names have no limit."""
    name = "x" * 70
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        CHAIN.format(
            model=TOOL, output=f"  schema: {json.dumps(OBJECT)}", provider="bedrock-converse"
        )
    )
    spec = load_file(path)
    bound = Assembly(spec, BedrockClients(Settings(chains_dir=tmp_path))).runnable.steps[1]  # type: ignore[attr-defined]
    assert bound.kwargs["tool_choice"] == {"tool": {"name": "x" * 64}}
    assert bound.kwargs["tools"][0]["function"]["name"] == "x" * 64
