"""An emulator of the Bedrock Runtime API over real HTTP, for development, tests and CI.

It answers ``converse``, ``converse-stream``, ``invoke`` and ``invoke-with-response-stream``
with the real ``application/vnd.amazon.eventstream`` framing, so langchain-aws and botocore
run unchanged against it (``endpoint_url`` pointed here, any credentials).
"""
