"""Chain files: what loads, and every error naming file and line."""

import inspect
import pickle
import re
from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import BaseModel

from service.chains import spec as spec_module
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
    assert set(chains) == {"summarize", "chat", "translate"}
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


# Error texts a prompt engineer can act on: each names the fix, in one line.
HEAD = "model:\n  id: anthropic.claude-3-haiku-20240307-v1:0\nprompt:\n  messages:\n"


def only_error(folder: Path, text: str, name: str = "e.yaml") -> str:
    [error] = errors_of(write(folder, name, text))
    return error.partition(f"{name}:")[2]  # from the line number on


def test_unquoted_template_is_a_mapping_to_quote(tmp_path: Path) -> None:
    text = HEAD + "    - system: Be brief.\n    - user: {question}\ninputs:\n  question: {}\n"
    assert only_error(tmp_path, text) == (
        "6: prompt.messages[1].user: a template that starts with { must be quoted: "
        '- user: "{question}"'
    )
    # With more after the braces, YAML itself fails on the line: the same advice.
    text = HEAD + "    - user: {question} and more\n"
    assert only_error(tmp_path, text) == (
        '5: a template that starts with { must be quoted: - user: "{question} and more"'
    )
    text = HEAD + "    - system: You are terse. Format: JSON\n"
    assert only_error(tmp_path, text) == (
        '5: text with ": " in it must be quoted: - system: "You are terse. Format: JSON"'
    )


def test_tab_in_indentation(tmp_path: Path) -> None:
    text = VALID.replace("  params:\n    temperature", "  params:\n\ttemperature")
    assert only_error(tmp_path, text) == "5: a tab in the indentation: indent with spaces, not tabs"


def test_literal_json_braces_in_f_string(tmp_path: Path) -> None:
    text = HEAD + '    - user: \'Reply as {"answer": "..."} for {text}\'\ninputs:\n  text: {}\n'
    error = only_error(tmp_path, text)
    assert error.startswith("5: prompt.messages[0]: the template has literal braces")
    assert error.endswith("write literal braces as {{ and }}, or use format: mustache")
    # Escaped, the same file loads; and mustache reads single braces as text.
    escaped = text.replace('{"answer": "..."}', '{{"answer": "..."}}')
    assert load_file(write(tmp_path, "ok.yaml", escaped)).inputs.keys() == {"text"}
    mustache = text.replace("{text}", "{{text}}").replace(
        "prompt:\n", "prompt:\n  format: mustache\n"
    )
    assert load_file(write(tmp_path, "mu.yaml", mustache)).inputs.keys() == {"text"}


def test_empty_placeholder_and_empty_file(tmp_path: Path) -> None:
    text = HEAD + '    - user: "Fill in {} here"\n'
    assert only_error(tmp_path, text) == (
        "5: prompt.messages[0]: an empty {} placeholder: name the variable, e.g. {text}, "
        "or write {{}} for literal braces"
    )
    for content in ("{}\n", "", "# nothing yet\n"):
        error = only_error(tmp_path, content)
        assert error.startswith("1: the file is")
        assert "a chain file needs model and prompt (and inputs" in error
        assert "e.g. model: {id: anthropic.claude-3-haiku-20240307-v1:0}" in error
    assert "not a list" in only_error(tmp_path, "- a\n- b\n")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            "    - human: hi\n",
            "6: prompt.messages[1]: unknown key 'human' (did you mean 'user'?): a message has "
            "one of the keys system, user, assistant, placeholder, written - user: text",
        ),
        (
            "    - ai: hi\n",
            "6: prompt.messages[1]: unknown key 'ai' (did you mean 'assistant'?): a message has "
            "one of the keys system, user, assistant, placeholder, written - user: text",
        ),
        (
            "    - role: user\n      content: hi\n",
            "6: prompt.messages[1]: unknown key 'role': messages are written - user: text, not "
            "role/content (keys: system, user, assistant, placeholder)",
        ),
        (
            "    - user: hi\n      human: hi\n",
            "7: prompt.messages[1]: unknown key 'human' (did you mean 'user'?): a message has "
            "one of the keys system, user, assistant, placeholder, written - user: text",
        ),
    ],
)
def test_unknown_message_key_lists_the_keys(tmp_path: Path, item: str, expected: str) -> None:
    text = HEAD + "    - system: Be brief.\n" + item
    assert only_error(tmp_path, text) == expected  # one error: no "exactly one key" as well


def test_top_k_goes_to_additional_request_fields(tmp_path: Path) -> None:
    text = VALID.replace("    temperature: 0.2\n", "    temperature: 0.2\n    top_k: 50\n")
    assert only_error(tmp_path, text) == (
        "6: model.params: unknown key 'top_k': top_k is model-specific, not one of Bedrock's "
        "common inference parameters (temperature, max_tokens, top_p, stop); set it under "
        "model.additional_request_fields: {top_k: 50}"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  params:\n    temperature: 0.2\n",
            "  params: 3\n",
            "4: model.params: must be a mapping of key: value lines, not 3",
        ),
        (
            "    temperature: 0.2",
            "    temperature: hot",
            "5: model.params.temperature: must be a number, not 'hot'",
        ),
        (
            "    temperature: 0.2",
            "    max_tokens: lots",
            "5: model.params.max_tokens: must be a whole number, not 'lots'",
        ),
        (
            "    temperature: 0.2",
            "    max_tokens: 0",
            "5: model.params.max_tokens: must be at least 1, not 0",
        ),
        (
            "    temperature: 0.2",
            "    stop: </a>",
            "5: model.params.stop: must be a list: one '- item' line each, or [a, b], not '</a>'",
        ),
        (
            "  id: anthropic.claude-3-haiku-20240307-v1:0",
            "  id: 1.5",
            '3: model.id: must be text; put it in quotes: "1.5"',
        ),
        (
            "  id: anthropic.claude-3-haiku-20240307-v1:0",
            '  id: ""',
            "3: model.id: must not be empty",
        ),
        (
            "model:\n",
            "model:\n  provider: openai\n",
            "3: model.provider: must be one of: bedrock-converse, bedrock",
        ),
        (
            "    type: string",
            "    type: int",
            "12: inputs.text.type: must be one of: string, integer, number, boolean, messages "
            "(did you mean 'integer'?)",
        ),
        (
            "    type: string",
            "    type: string\n    required: maybe",
            "13: inputs.text.required: must be true or false, not 'maybe'",
        ),
        (
            "    type: string",
            "    type: string\n    enum: [[a]]",
            "13: inputs.text.enum[0]: must be text or a number, not a list",
        ),
        (
            "  text:\n    type: string\n",
            "  text: string\n",
            "11: inputs.text: an input is a mapping of key: value lines, not 'string'; "
            "write text: {type: string}",
        ),
        (
            "    - system: Be brief.\n",
            "    - 3\n",
            "8: prompt.messages[0]: a message is one line - user: text "
            "(or system, assistant, placeholder), not 3",
        ),
        (
            "    - system: Be brief.\n",
            "    - system:\n",
            "8: prompt.messages[0]: 'system' has no text: write it after the colon, "
            "e.g. - system: Hello",
        ),
        (
            "description: ok\n",
            "name: My Chain\n",
            "1: name: must be lowercase letters, digits, - and _, starting with a letter or digit "
            "(it is the URL segment), e.g. my-chain",
        ),
        ("description: ok\n", "description: [a]\n", "1: description: must be text, not a list"),
    ],
)
def test_type_errors_in_plain_words(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VALID
    assert only_error(tmp_path, VALID.replace(old, new)) == expected


BAD_FILES = [
    VALID.replace("  params:\n    temperature: 0.2\n", "  params: [a]\n"),
    VALID.replace(
        "model:\n  id: anthropic.claude-3-haiku-20240307-v1:0\n  params:\n    temperature: 0.2\n",
        "model: x\n",
    ),
    VALID.replace("prompt:\n", "prompt: 3\nx:\n"),
    VALID.replace("  messages:\n", "  messages: hi\n  m:\n"),
    VALID.replace("    - system: Be brief.\n", "    - [a]\n"),
    VALID.replace("    type: string\n", "    [a]\n"),
    VALID.replace("inputs:\n  text:\n    type: string\n", "inputs: [text]\n"),
    VALID.replace("    type: string\n", "    type: string\n    enum: {a: 1}\n    max_length: x\n"),
    VALID.replace("    temperature: 0.2", "    temperature: 2\n    top_p: -1\n    stop: [[a]]"),
    VALID.replace("description: ok", "description: {a: 1}\nname: 3"),
    VALID.replace("prompt:\n", "prompt:\n  format: [x]\n"),
    VALID + "tests: 3\n",
    VALID + "tests:\n  - 3\n  - name: [x]\n",
]


def test_no_message_names_an_internal_class(tmp_path: Path) -> None:
    classes = {
        name
        for name, value in vars(spec_module).items()
        if inspect.isclass(value) and issubclass(value, BaseModel)
    }
    assert {"ChainSpec", "ModelParams", "MessageSpec", "InputSpec"} <= classes
    messages = []
    for index, text in enumerate(BAD_FILES):
        messages += errors_of(write(tmp_path, f"bad{index}.yaml", text))
    assert len(messages) >= len(BAD_FILES)
    for message in messages:
        assert not any(re.search(rf"\b{name}\b", message) for name in classes), message
        assert "Input should" not in message and "\n" not in message, message


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
