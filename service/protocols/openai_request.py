"""A Chat Completions request body, read and checked: the conversation as turns, the chain's
other inputs, and the inference parameters a caller may set, within the chain file's limits.

What is refused, and how:

- 422: not a Chat Completions body — invalid JSON, a key given twice, a missing or ill-typed
  field (``messages[2].content: must be a string or a list of content parts``).
- 400: a valid request that chainserve cannot honour — a parameter outside the chain's or
  Bedrock's limits (``max_tokens: 5000 is above this chain's limit of 1000``), or a feature a
  chain does not have (``n: 2``, ``tools``, ``response_format: json_object``, audio parts,
  ``tool`` messages), each naming the field and what to send instead. Image parts fill the
  chain's image inputs (``service.chains.conversation``).

Parameters whose default value means "nothing" (``n: 1``, ``frequency_penalty: 0``, empty
``logit_bias`` …) pass, as do ``user``, ``metadata``, ``seed``, ``store`` and the like, which
ask nothing of the answer. So do fields OpenAI does not define: clients add their own (Open
WebUI, LiteLLM), and refusing them would refuse those clients.
"""

import json
from dataclasses import dataclass
from typing import Any

from service.chains.conversation import Turn
from service.chains.inputs import refuse_duplicate_keys, whole_number
from service.chains.model_spec import ModelParams
from service.chains.spec import ChainSpec
from service.runs import errors

# Converse takes up to 2,500 stop sequences; OpenAI documents at most 4, so its clients send no
# more, and models differ on how many they honour. (temperature and top_p: Bedrock's 0–1, where
# OpenAI's temperature goes to 2.)
MAX_STOP_SEQUENCES = 4
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# OpenAI parameters whose meaning a chain cannot honour: refused unless left out or set to the
# value that asks for nothing. Parameter → (the values that pass, why the others do not).
_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "n": ((1,), "a chain gives one answer per request; send n: 1 or leave it out"),
    "tools": (([],), "chains call no tools; leave tools out"),
    "functions": (([],), "chains call no functions; leave functions out"),
    "tool_choice": (("none", "auto"), "chains call no tools; leave tool_choice out"),
    "function_call": (("none", "auto"), "chains call no functions; leave function_call out"),
    "response_format": (
        ({"type": "text"},),
        "the chain file decides the output's form; leave response_format out (or send text)",
    ),
    "logprobs": ((False,), "Bedrock gives no log probabilities; leave logprobs out"),
    "top_logprobs": ((0,), "Bedrock gives no log probabilities; leave top_logprobs out"),
    "logit_bias": (({},), "Bedrock takes no logit bias; leave logit_bias out"),
    "frequency_penalty": ((0,), "Bedrock takes no frequency penalty; send 0 or leave it out"),
    "presence_penalty": ((0,), "Bedrock takes no presence penalty; send 0 or leave it out"),
    "modalities": ((["text"],), 'chains answer in text only; send ["text"] or leave it out'),
    "audio": ((), "chains answer in text only; leave audio out"),
    "prediction": ((), "predicted outputs are not supported; leave prediction out"),
    "reasoning_effort": ((), "the chain file sets the model's options; leave it out"),
    "verbosity": ((), "the chain file sets the model's options; leave it out"),
    "web_search_options": ((), "chains do not search the web; leave web_search_options out"),
}


@dataclass(frozen=True)
class ChatRequest:
    model: str
    turns: list[Turn]
    inputs: dict[str, Any]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: list[str]

    def params_for(self, spec: ChainSpec) -> ModelParams:
        """The request's inference parameters, checked against what ``spec`` allows:
        ``max_tokens`` up to the chain's own (when it sets one)."""
        limit = spec.model.params.max_tokens
        if self.max_tokens is not None and limit is not None and self.max_tokens > limit:
            raise _refused(
                "max_tokens",
                f"{self.max_tokens} is above this chain's limit of {limit} "
                "(model.params.max_tokens in its chain file); send at most that",
                code="unsupported_value",
            )
        return ModelParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=self.stop or None,
        )


def parse_chat_request(raw: bytes) -> ChatRequest:
    refuse_duplicate_keys(raw)
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, and invalid UTF-8
        raise errors.bad_request("body", f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise errors.bad_request("body", "the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise errors.bad_request("body", "must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_request("model", "required: the name of a chain (GET /v1/models)")
    for name, (passing, why) in _UNSUPPORTED.items():
        value = body.get(name)
        if value is not None and not any(_same(value, allowed) for allowed in passing):
            raise _refused(name, f"{json.dumps(value)[:60]} is not supported: {why}")
    inputs = body.get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise errors.bad_request("inputs", "must be an object of the chain's other inputs")
    stream = _typed(body, "stream", bool, "true or false") or False
    options = _typed(body, "stream_options", dict, "an object") or {}
    include_usage = _typed(options, "include_usage", bool, "true or false", "stream_options.")
    return ChatRequest(
        model=model,
        turns=_turns(body.get("messages")),
        inputs=inputs or {},
        stream=stream,
        include_usage=bool(include_usage),
        max_tokens=_max_tokens(body),
        temperature=_fraction(body, "temperature"),
        top_p=_fraction(body, "top_p"),
        stop=_stop(body.get("stop")),
    )


def _turns(messages: Any) -> list[Turn]:
    if not isinstance(messages, list) or not messages:
        raise errors.bad_request("messages", "required: a non-empty list of messages")
    turns = []
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        if not isinstance(message, dict):
            raise errors.bad_request(at, 'must be an object: {"role": …, "content": …}')
        role = message.get("role")
        if role in ("tool", "function"):
            raise _refused(
                f"{at}.role",
                f"{role!r} messages answer tool calls, and chains call no tools; "
                "send system, user and assistant messages",
            )
        if not isinstance(role, str) or role not in _ROLES:
            raise errors.bad_request(f"{at}.role", "must be system, developer, user or assistant")
        if message.get("tool_calls") or message.get("function_call"):
            raise _refused(f"{at}.tool_calls", "chains call no tools; send the text only")
        text, images = _content(message.get("content"), f"{at}.content")
        turns.append(Turn(_ROLES[role], text, images))
    return turns


def _content(content: Any, at: str) -> tuple[str, tuple[Any, ...]]:
    """A message's text — a string, or its text parts joined by newlines — and the URLs of
    its image parts (data URLs: a chain's image inputs validate them)."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise errors.bad_request(at, "must be a string or a list of content parts")
    texts, images = [], []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise errors.bad_request(f"{at}[{index}]", 'must be {"type": "text", "text": …}')
        kind = part.get("type")
        if kind == "image_url":
            url = (
                (part.get("image_url") or {}).get("url")
                if isinstance(part.get("image_url"), dict)
                else None
            )
            if not isinstance(url, str):
                raise errors.bad_request(
                    f"{at}[{index}].image_url.url", "required: the image as a data URL"
                )
            images.append(url)
            continue
        if kind != "text":
            raise _refused(
                f"{at}[{index}].type",
                f"{json.dumps(kind)[:40]} parts are not supported: chains take text and "
                'images; send {"type": "text", "text": …} or {"type": "image_url", …} parts',
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise errors.bad_request(f"{at}[{index}].text", "required: a string")
        texts.append(text)
    return "\n".join(texts), tuple(images)


def _max_tokens(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` (OpenAI's current name) or ``max_tokens`` (its old one)."""
    newer = _integer(body, "max_completion_tokens")
    older = _integer(body, "max_tokens")
    if newer is not None and older is not None and newer != older:
        raise _refused("max_tokens", "differs from max_completion_tokens; send one of them")
    value: int | None = newer if newer is not None else older
    if value is not None and value < 1:
        name = "max_completion_tokens" if newer is not None else "max_tokens"
        raise _refused(name, f"{value} is too small; send at least 1", "unsupported_value")
    return value


def _fraction(body: dict[str, Any], name: str) -> float | None:
    """``temperature`` or ``top_p``: Bedrock takes both in 0–1."""
    value = _typed(body, name, (int, float), "a number")
    if value is not None and not 0 <= value <= 1:
        raise _refused(
            name,
            f"{value} is outside 0–1, the range Bedrock takes; send a number from 0 to 1",
            "unsupported_value",
        )
    return None if value is None else float(value)


def _stop(stop: Any) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop
    if sequences is None:
        return []
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise errors.bad_request("stop", "must be a string or a list of strings")
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise _refused(
            "stop",
            f"{len(sequences)} sequences; send at most {MAX_STOP_SEQUENCES}",
            "unsupported_value",
        )
    if "" in sequences:
        raise _refused("stop", "an empty stop sequence (Bedrock refuses it); remove it")
    return sequences


def _same(value: Any, allowed: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1.0`` is (Python's ``==`` says both are)."""
    return value == allowed and isinstance(value, bool) == isinstance(allowed, bool)


def _integer(body: dict[str, Any], name: str) -> int | None:
    """An integer parameter; a whole-number float (``256.0``) counts, as in JSON Schema."""
    value = whole_number(_typed(body, name, (int, float), "an integer"))
    if value is not None and not isinstance(value, int):
        raise errors.bad_request(name, "must be an integer")
    return value


def _typed(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str, prefix: str = ""
) -> Any:
    """``body[name]`` if it is of ``kind`` (``None`` when absent or null); 422 otherwise."""
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or _wrongly_bool(value, kind)):
        raise errors.bad_request(f"{prefix}{name}", f"must be {what}")
    return value


def _wrongly_bool(value: Any, kind: type | tuple[type, ...]) -> bool:
    """JSON's true is not a number, though Python's bool is an int."""
    return isinstance(value, bool) and kind is not bool


def _refused(field: str, message: str, code: str = "unsupported_parameter") -> errors.ApiError:
    """400: a valid OpenAI request that chains cannot honour (OpenAI's own status for it)."""
    return errors.ApiError(
        400, f"{field}: {message}", code=code, errors=[{"field": field, "message": message}]
    )
