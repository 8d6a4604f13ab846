"""Contender (c1), the floor: botocore's ConverseStream consumed in this process, no server.

``python -m bench.contenders.botocore_floor cpu|ttfb --endpoint URL ...`` prints JSON:

- ``cpu``: CPU seconds per event over ``--rounds`` rounds of ``--streams`` streams each
  (``resource.getrusage``: this process only; the emulator runs elsewhere);
- ``ttfb``: for ``--requests`` sequential calls, seconds from the call to its first text delta.
"""

import argparse
import json
import resource
import time
from typing import Any

import boto3
from botocore.config import Config

from bench.contenders.catalog import MODEL_ID, SYSTEM_PROMPT, TEXT


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stream(bedrock: Any) -> Any:
    response = bedrock.converse_stream(
        modelId=MODEL_ID,
        system=[{"text": SYSTEM_PROMPT}],
        messages=[{"role": "user", "content": [{"text": TEXT}]}],
        inferenceConfig={"temperature": 0},
    )
    return response["stream"]


def cpu_per_event(bedrock: Any, rounds: int, streams: int) -> list[float]:
    per_round = []
    for _ in range(rounds):
        started, events = _cpu_seconds(), 0
        for _ in range(streams):
            for event in _stream(bedrock):
                events += "contentBlockDelta" in event
        per_round.append((_cpu_seconds() - started) / events)
    return per_round


def time_to_first_token(bedrock: Any, requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        first = None
        for event in _stream(bedrock):
            if first is None and "contentBlockDelta" in event:
                first = time.perf_counter() - started
        assert first is not None, "the stream had no text"
        times.append(first)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["cpu", "ttfb"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    bedrock = boto3.client(
        "bedrock-runtime", endpoint_url=args.endpoint, config=Config(read_timeout=60)
    )
    for _ in range(args.warmup):
        for _ in _stream(bedrock):
            pass
    if args.mode == "cpu":
        print(json.dumps({"cpu_per_event": cpu_per_event(bedrock, args.rounds, args.streams)}))
    else:
        print(json.dumps({"first_token": time_to_first_token(bedrock, args.requests)}))


if __name__ == "__main__":
    main()
