"""Error texts for chain files: each names the file, the line and the fix, in one line."""

import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from service.chains import model_spec as model_spec_module
from service.chains import spec as spec_module
from service.chains.loader import (
    load_file,
)
from tests.test_loader import VALID, errors_of, write

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
            "one of the keys system, user, assistant, placeholder, image, written - user: text",
        ),
        (
            "    - ai: hi\n",
            "6: prompt.messages[1]: unknown key 'ai' (did you mean 'assistant'?): a message has "
            "one of the keys system, user, assistant, placeholder, image, written - user: text",
        ),
        (
            "    - role: user\n      content: hi\n",
            "6: prompt.messages[1]: unknown key 'role': messages are written - user: text, not "
            "role/content (keys: system, user, assistant, placeholder, image)",
        ),
        (
            "    - user: hi\n      human: hi\n",
            "7: prompt.messages[1]: unknown key 'human' (did you mean 'user'?): a message has "
            "one of the keys system, user, assistant, placeholder, image, written - user: text",
        ),
    ],
)
def test_unknown_message_key_lists_the_keys(tmp_path: Path, item: str, expected: str) -> None:
    text = HEAD + "    - system: Be brief.\n" + item
    assert only_error(tmp_path, text) == expected  # one error: no "exactly one key" as well


def test_a_model_specific_param_goes_to_additional_request_fields(tmp_path: Path) -> None:
    text = VALID.replace("    temperature: 0.2\n", "    temperature: 0.2\n    min_p: 0.1\n")
    assert only_error(tmp_path, text) == (
        "6: model.params: unknown key 'min_p': min_p is model-specific, not one of the inference "
        "parameters chain files take (temperature, max_tokens, top_p, stop, top_k); set it under "
        "model.additional_request_fields: {min_p: 0.1}"
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
            "12: inputs.text.type: must be one of: string, integer, number, boolean, messages, "
            "image (did you mean 'integer'?)",
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
            "(or system, assistant, placeholder, image), not 3",
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
        for module in (spec_module, model_spec_module)
        for name, value in vars(module).items()
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


INPUT_HEAD = HEAD + "    - user: '{x}'\ninputs:\n  x:\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "    pattern: '(?P<id>[0-9]+)'\n",
            "8: inputs.x.pattern: pattern '(?P<id>[0-9]+)': (?P… is Python-only syntax",
        ),
        (
            "    pattern: '[a-'\n",
            "8: inputs.x.pattern: pattern '[a-': not a regular expression: unterminated",
        ),
        (
            "    pattern: '^a\\Z'\n",
            "8: inputs.x.pattern: pattern '^a\\\\Z': \\Z is Python-only; use $ for the end",
        ),
        (
            "    pattern: '^[a-z]+$'\n    default: B\n",
            "7: inputs.x: default 'B' does not match pattern",
        ),
        (
            "    type: number\n    minimum: 5\n    maximum: 1\n",
            "7: inputs.x: minimum 5 is above maximum 1; swap them",
        ),
        (
            "    type: boolean\n    minimum: 0\n",
            "7: inputs.x: minimum applies to integer and number inputs, not boolean",
        ),
        ("    type: integer\n    maximum: 2.5\n", "7: inputs.x: maximum 2.5 is not an integer"),
        (
            "    type: number\n    minimum: .inf\n",
            "7: inputs.x: minimum inf is not a finite number",
        ),
        (
            "    type: number\n    default: .nan\n",
            "7: inputs.x: nan is not a finite number; no request could send it",
        ),
        (
            "    type: integer\n    minimum: 1\n    enum: [0, 1]\n",
            "7: inputs.x: 0 is outside minimum/maximum; fix one of them",
        ),
        (
            "    type: integer\n    min_length: 1\n",
            "7: inputs.x: min_length applies to string inputs, not integer",
        ),
        (
            "    enum: [a, b]\n    pattern: a\n",
            "7: inputs.x: pattern does not apply to an enum input",
        ),
        (
            "    min_length: 9\n    max_length: 3\n",
            "7: inputs.x: min_length 9 is above max_length 3",
        ),
        ("    roles: [system]\n", "7: inputs.x: roles applies to messages inputs, not string"),
    ],
)
def test_input_constraints_name_the_key(tmp_path: Path, lines: str, expected: str) -> None:
    assert only_error(tmp_path, INPUT_HEAD + lines).startswith(expected)


def test_roles_are_checked(tmp_path: Path) -> None:
    text = (
        HEAD + "    - placeholder: x\ninputs:\n  x:\n    type: messages\n    roles: [user, user]\n"
    )
    assert (
        only_error(tmp_path, text) == "9: inputs.x.roles: roles lists a role twice; list each once"
    )
    bad = text.replace("[user, user]", "[user, tool]")
    assert "inputs.x.roles" in only_error(tmp_path, bad) and "system" in only_error(tmp_path, bad)
    ok = load_file(write(tmp_path, "ok.yaml", text.replace("[user, user]", "[system, user]")))
    assert ok.inputs["x"].allowed_roles == ("system", "user")
