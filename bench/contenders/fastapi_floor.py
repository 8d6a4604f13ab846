"""Contender (c2), the HTTP floor: plain FastAPI forwarding botocore's ConverseStream text.

What a user writes by hand with no LangChain: a sync endpoint calls ``converse_stream`` and
returns a ``StreamingResponse`` over the text deltas (Starlette iterates a sync generator on
its thread pool). Same model, messages and client settings as the bench chain.
Run: ``uvicorn bench.contenders.fastapi_floor:app``.
"""

import os
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from bench.contenders.catalog import MODEL_ID, SYSTEM_PROMPT

bedrock: Any = boto3.client(
    "bedrock-runtime",
    endpoint_url=os.environ["CHAINSERVE_BEDROCK_ENDPOINT_URL"],
    config=Config(max_pool_connections=1024, read_timeout=60),
)
app = FastAPI(title="FastAPI + botocore (benchmark floor)")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/stream")
def stream(body: dict[str, Any]) -> StreamingResponse:
    response = bedrock.converse_stream(
        modelId=MODEL_ID,
        system=[{"text": SYSTEM_PROMPT}],
        messages=[{"role": "user", "content": [{"text": body["text"]}]}],
        inferenceConfig={"temperature": 0},
    )

    def text() -> Iterator[str]:
        for event in response["stream"]:
            delta = event.get("contentBlockDelta")
            if delta is not None:
                yield delta["delta"]["text"]

    return StreamingResponse(text(), media_type="text/plain; charset=utf-8")
