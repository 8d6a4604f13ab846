"""The emulator's tools, media, response fields and prompt cache, through boto3 and langchain-aws."""

import json
import struct
from typing import Any

from service.emulator.server import Emulator
from tests.helpers import ANTHROPIC_BODY, HI
from tests.helpers import EMULATED_MODEL as MODEL

WEATHER: dict[str, Any] = {
    "toolSpec": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            }
        },
    }
}


def test_converse_calls_a_tool_then_answers_its_result(runtime: Any) -> None:
    paris = [{"role": "user", "content": [{"text": "Paris"}]}]
    first = runtime.converse(modelId=MODEL, messages=paris, toolConfig={"tools": [WEATHER]})
    assert first["stopReason"] == "tool_use"
    text, call = first["output"]["message"]["content"]
    assert text["text"].endswith("tools: get_weather\nuser: Paris")
    assert call == {
        "toolUse": {
            "toolUseId": "tooluse_emulator000001",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    }
    result = {"toolResult": {"toolUseId": "tooluse_emulator000001", "content": [{"text": "21 °C"}]}}
    second = runtime.converse(
        modelId=MODEL,
        messages=[*paris, first["output"]["message"], {"role": "user", "content": [result]}],
        toolConfig={"tools": [WEATHER]},
    )
    assert second["stopReason"] == "end_turn"
    assert second["output"]["message"]["content"][0]["text"].endswith("user: [toolResult: 21 °C]")
    # toolChoice any / tool: a call even after a result
    forced = runtime.converse(
        modelId=MODEL,
        messages=paris,
        toolConfig={"tools": [WEATHER], "toolChoice": {"tool": {"name": "get_weather"}}},
    )
    assert forced["stopReason"] == "tool_use"


def test_converse_stream_tool_use_events(runtime: Any) -> None:
    response = runtime.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": "Paris"}]}],
        toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}},
    )
    events = list(response["stream"])
    names = [next(iter(e)) for e in events]
    assert names[-7:] == [
        "contentBlockStop",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    start = events[-6]["contentBlockStart"]
    assert start == {
        "contentBlockIndex": 1,
        "start": {"toolUse": {"toolUseId": "tooluse_emulator000001", "name": "get_weather"}},
    }
    parts = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events[-5:-3]]
    assert json.loads("".join(parts)) == {"city": "Paris"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def test_langchain_aws_tool_calls(bedrock: Emulator) -> None:
    """bind_tools works against the emulator, streamed or not, through both APIs."""
    from langchain_aws import ChatBedrock, ChatBedrockConverse
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "21 °C"

    for model in (
        ChatBedrockConverse(model_id=MODEL, endpoint_url=bedrock.url, region_name="us-east-1"),
        ChatBedrock(model_id=MODEL, endpoint_url=bedrock.url, region_name="us-east-1"),
    ):
        with_tools = model.bind_tools([get_weather])
        message = with_tools.invoke("Paris")
        [call] = message.tool_calls
        assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
        chunks = list(with_tools.stream("Paris"))
        assert sum(chunks[1:], chunks[0]).tool_calls[0]["args"] == {"city": "Paris"}
        result = ToolMessage("21 °C", tool_call_id=call["id"])
        final = with_tools.invoke([HumanMessage("Paris"), message, result])
        assert not final.tool_calls and final.text.endswith("[toolResult: 21 °C]")


def test_invoke_model_tool_use(runtime: Any) -> None:
    tools = [{"name": "get_weather", "input_schema": WEATHER["toolSpec"]["inputSchema"]["json"]}]
    body = {**ANTHROPIC_BODY, "tools": tools, "tool_choice": {"type": "any"}}
    reply = json.loads(runtime.invoke_model(modelId=MODEL, body=json.dumps(body))["body"].read())
    assert reply["stop_reason"] == "tool_use"
    assert reply["content"][1] == {
        "type": "tool_use",
        "id": "toolu_bdrk_emulator000001",
        "name": "get_weather",
        "input": {"city": "hi"},
    }
    events = [
        json.loads(e["chunk"]["bytes"])
        for e in runtime.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))[
            "body"
        ]
    ]
    tool_events = [e for e in events if e.get("index") == 1]
    assert [e["type"] for e in tool_events] == [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
    ]
    partial = "".join(e["delta"]["partial_json"] for e in tool_events[1:3])
    assert json.loads(partial) == {"city": "hi"}
    body["tool_choice"] = {"type": "none"}
    reply = json.loads(runtime.invoke_model(modelId=MODEL, body=json.dumps(body))["body"].read())
    assert reply["stop_reason"] == "end_turn" and len(reply["content"]) == 1


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + b"\0" * 4


def test_images_and_documents_are_described_and_counted(runtime: Any) -> None:
    content = [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": png(300, 250)}}},
        {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"one two three"}}},
    ]
    response = runtime.converse(modelId=MODEL, messages=[{"role": "user", "content": content}])
    text = response["output"]["message"]["content"][0]["text"]
    assert text.endswith(
        "user: What is this? [image png 300×250]  [document notes (txt), 13 bytes]"
    )
    words = len(text.split("\n", 1)[1].removeprefix("user: ").split())
    # the words echoed, 300×250/750 = 100 for the image, 3 for the document's text
    assert response["usage"]["inputTokens"] == words + 100 + 3


def test_additional_model_response_fields(runtime: Any) -> None:
    paths = ["/stop_sequence", "/usage/output_tokens", "/nothing"]
    response = runtime.converse(
        modelId=MODEL,
        messages=HI,
        inferenceConfig={"stopSequences": ["received"]},
        additionalModelResponseFieldPaths=paths,
    )
    assert response["additionalModelResponseFields"] == {
        "stop_sequence": "received",
        "usage": {"output_tokens": 2},
    }
    stream = runtime.converse_stream(
        modelId=MODEL, messages=HI, additionalModelResponseFieldPaths=["/stop_reason"]
    )
    stop = next(e["messageStop"] for e in stream["stream"] if "messageStop" in e)
    assert stop["additionalModelResponseFields"] == {"stop_reason": "end_turn"}


def test_cache_points_write_then_read(bedrock: Emulator, runtime: Any) -> None:
    system = [{"text": "A long shared preamble of six words."}, {"cachePoint": {"type": "default"}}]

    def usage() -> dict[str, int]:
        return dict(runtime.converse(modelId=MODEL, system=system, messages=HI)["usage"])

    first, second = usage(), usage()
    assert first["cacheWriteInputTokens"] == 7 and first["cacheReadInputTokens"] == 0
    assert second["cacheReadInputTokens"] == 7 and second["cacheWriteInputTokens"] == 0
    assert first["inputTokens"] == second["inputTokens"] == 1  # "hi"
    assert first["totalTokens"] == 1 + 7 + first["outputTokens"]
    assert "cacheReadInputTokens" not in runtime.converse(modelId=MODEL, messages=HI)["usage"]
    bedrock.state.reset()
    assert usage()["cacheWriteInputTokens"] == 7

    blocks = [
        {
            "type": "text",
            "text": "Six words of shared preamble here.",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    body = {**ANTHROPIC_BODY, "system": blocks}
    for read, write in ((0, 6), (6, 0)):
        response = runtime.invoke_model(modelId=MODEL, body=json.dumps(body))
        usage_ = json.loads(response["body"].read())["usage"]
        assert (usage_["cache_read_input_tokens"], usage_["cache_creation_input_tokens"]) == (
            read,
            write,
        )
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-bedrock-cache-read-input-token-count"] == str(read)
