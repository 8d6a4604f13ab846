"""Which Bedrock answers the workbench commands: ``dev``, ``run`` and ``test``.

One rule, so nothing costs money by accident: the built-in emulator, unless ``--live`` is
given; then Bedrock itself, or ``CHAINSERVE_BEDROCK_ENDPOINT_URL`` when it is set. Only
``serve`` talks to Bedrock by default.
"""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from service.emulator.state import Pace


@dataclass(frozen=True)
class Backend:
    endpoint_url: str | None
    """Where Bedrock Runtime calls go; ``None``: AWS's own endpoint for each chain's region."""
    description: str
    """Said on stderr, so the user knows who answered."""


@contextlib.contextmanager
def bedrock_for(live: bool, pace: Pace | None = None) -> Iterator[Backend]:
    """The Bedrock to use for as long as the block runs (the emulator is started for it)."""
    if live:
        endpoint = os.environ.get("CHAINSERVE_BEDROCK_ENDPOINT_URL") or None
        where = endpoint or "AWS, with the AWS environment's credentials"
        yield Backend(endpoint, f"Bedrock ({where})")
        return
    from service.emulator.server import Emulator

    # The emulator takes any signature; botocore only needs some credentials to sign with.
    # Set here, the environment's keys win over a profile, so no credential lookup goes out.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "emulator")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "emulator")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    with Emulator(pace=pace or Pace()) as bedrock:
        yield Backend(
            bedrock.url, f"the built-in Bedrock emulator on {bedrock.url} (--live for Bedrock)"
        )
