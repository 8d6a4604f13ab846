"""Chain files: what loads, and every error naming file and line."""

import pickle
from pathlib import Path
from textwrap import dedent

import pytest

from service.chains.loader import (
    ChainFileError,
    ChainFileErrors,
    chain_files,
    load_file,
    load_folder,
)
from service.chains.spec import ChainSpec
from tests.conftest import EXAMPLE_CHAINS

VALID = """\
description: ok
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
  params:
    temperature: 0.2
prompt:
  messages:
    - system: Be brief.
    - user: "Say {text}"
inputs:
  text:
    type: string
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(dedent(text))
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ChainFileErrors) as caught:
        load_file(path)
    return [str(error) for error in caught.value.errors]


def test_example_chains_load() -> None:
    chains = load_folder(EXAMPLE_CHAINS)
    assert set(chains) == {"summarize", "chat", "translate", "extract", "describe_image"}
    assert chains["translate"].model.provider == "bedrock"
    assert chains["translate"].inputs["language"].default == "French"
    assert chains["chat"].inputs["history"].type == "messages"


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "echo-it.yaml", VALID)).name == "echo-it"


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "summarize.yaml", VALID.replace("temperature", "temprature"))
    [error] = errors_of(path)
    assert error.endswith(
        "summarize.yaml:5: model.params: unknown key 'temprature' (did you mean 'temperature'?)"
    )


def test_jinja2_is_refused_with_reason(tmp_path: Path) -> None:
    text = VALID.replace("prompt:\n", "prompt:\n  format: jinja2\n")
    [error] = errors_of(write(tmp_path, "j.yaml", text))
    assert "j.yaml:7: prompt.format:" in error
    assert "execute code" in error


def test_undeclared_template_variable(tmp_path: Path) -> None:
    text = VALID.replace('"Say {text}"', '"Say {text} to {persn}"')
    [error] = errors_of(write(tmp_path, "v.yaml", text))
    assert "v.yaml:9: prompt.messages[1]: template uses {persn}" in error
    assert "declare it under inputs" in error


def test_unused_input(tmp_path: Path) -> None:
    text = VALID + "  tone:\n    type: string\n"
    [error] = errors_of(write(tmp_path, "u.yaml", text))
    assert "u.yaml:13: inputs.tone: input 'tone' is declared but the prompt never uses it" in error


def test_misspelled_variable_suggests_input(tmp_path: Path) -> None:
    text = VALID.replace('"Say {text}"', '"Say {txet}"')
    messages = errors_of(write(tmp_path, "m.yaml", text))
    assert any("(did you mean 'text'?)" in m for m in messages)
    assert any("inputs.text: input 'text' is declared but" in m for m in messages)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "y.yaml", VALID.replace("  params:", "  params: [")))
    assert "y.yaml:6: invalid YAML" in error  # where the parser found the problem


def test_duplicate_key(tmp_path: Path) -> None:
    text = VALID.replace("description: ok\n", "description: ok\ndescription: again\n")
    [error] = errors_of(write(tmp_path, "d.yaml", text))
    assert "d.yaml:2:" in error and "appears twice" in error


def test_missing_model_id(tmp_path: Path) -> None:
    text = VALID.replace("  id: anthropic.claude-3-haiku-20240307-v1:0\n", "")
    [error] = errors_of(write(tmp_path, "i.yaml", text))
    assert "i.yaml:2: model: missing required key 'id'" in error


def test_bad_value_type_and_range(tmp_path: Path) -> None:
    text = VALID.replace("temperature: 0.2", "temperature: 3")
    [error] = errors_of(write(tmp_path, "t.yaml", text))
    assert "t.yaml:5: model.params.temperature:" in error and "1" in error


def test_message_with_two_roles(tmp_path: Path) -> None:
    text = VALID.replace("    - system: Be brief.\n", "    - system: Be brief.\n      user: hi\n")
    [error] = errors_of(write(tmp_path, "r.yaml", text))
    assert "r.yaml:8: prompt.messages[0]: a message has exactly one key" in error


def test_placeholder_needs_messages_input(tmp_path: Path) -> None:
    text = VALID.replace("    - system: Be brief.\n", "    - placeholder: text\n")
    [error] = errors_of(write(tmp_path, "p.yaml", text))
    assert (
        "p.yaml:8: prompt.messages[0]: placeholder 'text' needs an input of type messages" in error
    )


def test_messages_input_used_as_text(tmp_path: Path) -> None:
    text = VALID.replace("    type: string", "    type: messages")
    messages = errors_of(write(tmp_path, "h.yaml", text))
    assert any("h.yaml:9:" in m and "- placeholder: text" in m for m in messages)


def test_mustache_variables_are_checked(tmp_path: Path) -> None:
    text = VALID.replace("prompt:\n", "prompt:\n  format: mustache\n").replace(
        '"Say {text}"', '"Say {{text}} {{other}}"'
    )
    [error] = errors_of(write(tmp_path, "mu.yaml", text))
    assert "template uses {{other}}" in error


def test_invalid_f_string(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "f.yaml", VALID.replace('"Say {text}"', '"Say {text"')))
    assert "f.yaml:9: prompt.messages[1]: invalid f-string template" in error


def test_default_and_required_conflict(tmp_path: Path) -> None:
    text = VALID.replace(
        "    type: string\n", "    type: string\n    required: true\n    default: x\n"
    )
    [error] = errors_of(write(tmp_path, "c.yaml", text))
    assert "c.yaml:11: inputs.text: an input with a default is not required" in error


def test_bad_file_name_needs_explicit_name(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "Bad Name.yaml", VALID))
    assert "is not a valid chain name" in error
    assert load_file(write(tmp_path, "Other Name.yaml", "name: fine\n" + VALID)).name == "fine"


def test_not_a_mapping(tmp_path: Path) -> None:
    [error] = errors_of(write(tmp_path, "l.yaml", "- a\n- b\n"))
    assert "l.yaml:1:" in error and "mapping" in error


def test_folder_reports_every_file_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: same\n" + VALID)
    write(tmp_path, "b.yaml", "name: same\n" + VALID)
    write(tmp_path, "c.yaml", VALID.replace("temperature", "temprature"))
    with pytest.raises(ChainFileErrors) as caught:
        load_folder(tmp_path)
    text = str(caught.value)
    assert "b.yaml:1: name: chain 'same' is already defined in" in text
    assert "c.yaml:5: model.params: unknown key 'temprature'" in text


def test_schema_rejects_unknown_keys() -> None:
    schema = ChainSpec.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"model", "prompt"}


def test_arn_model_id_needs_its_base_model(tmp_path: Path) -> None:
    arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc"
    text = VALID.replace("id: anthropic.claude-3-haiku-20240307-v1:0", f"id: {arn}")
    [error] = errors_of(write(tmp_path, "arn.yaml", text))
    assert "arn.yaml:2: model: a model ARN does not say which model it serves" in error
    based = text.replace("model:\n", "model:\n  base_model: us.anthropic.claude-3-haiku-v1:0\n")
    spec = load_file(write(tmp_path, "arn2.yaml", based))
    assert spec.model.vendor == "anthropic"
    assert spec.model.iam_resources() == [
        arn,
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-v1:0",
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("    type: integer\n    default: three\n", "'three' is not an integer"),
        ("    type: integer\n    enum: [a, b]\n", "'a' is not an integer"),
        (
            "    type: string\n    enum: [a, b]\n    required: false\n",
            "optional enum input needs a default",
        ),
        ("    type: boolean\n    default: 1\n", "1 is not a boolean"),
    ],
)
def test_default_and_enum_take_the_inputs_type(tmp_path: Path, inputs: str, message: str) -> None:
    text = VALID.replace("    type: string\n", inputs)
    [error] = errors_of(write(tmp_path, "t.yaml", text))
    assert "t.yaml:11: inputs.text:" in error and message in error


def test_chain_files_skip_editor_droppings(tmp_path: Path) -> None:
    for name in (
        "a.yaml",
        "b.yml",
        ".#a.yaml",
        "a.yaml~",
        ".a.yaml.swp",
        "#a.yaml#",
        ".hidden.yaml",
        "notes.txt",
    ):
        write(tmp_path, name, VALID)
    assert [path.name for path in chain_files(tmp_path)] == ["a.yaml", "b.yml"]


def test_specs_and_errors_survive_pickling(tmp_path: Path) -> None:
    """Reloads load files in a child process, which sends back either of these."""
    spec = load_file(write(tmp_path, "p.yaml", VALID))
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and copy._source == spec._source == (tmp_path / "p.yaml", 2)
    with pytest.raises(ChainFileErrors) as caught:
        load_file(write(tmp_path, "q.yaml", "[]\n"))
    errors = caught.value.errors
    assert pickle.loads(pickle.dumps(errors)) == errors
    assert isinstance(errors[0], ChainFileError)
