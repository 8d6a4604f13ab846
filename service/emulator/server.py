"""The emulator as a running server: in a background thread, or in the foreground (CLI)."""

from typing import Any

import uvicorn

from service.background import BackgroundServer
from service.emulator.app import create_emulator_app
from service.emulator.state import EmulatorState, Fault, Pace


class Emulator(BackgroundServer):
    """The emulator on a loopback port in this process: ``with Emulator() as bedrock: ...``.

    ``bedrock.url`` is the ``endpoint_url`` for boto3 / ``CHAINSERVE_BEDROCK_ENDPOINT_URL``;
    ``bedrock.state`` shows every call and takes pacing and faults.
    """

    def __init__(
        self, pace: Pace | None = None, faults: list[Fault] | None = None, **config: Any
    ) -> None:
        self.state = EmulatorState(pace=pace or Pace(), faults=list(faults or []))
        super().__init__(create_emulator_app(self.state), **config)


def run(host: str, port: int, pace: Pace, faults: list[Fault], log_level: str = "info") -> None:
    """Serve the emulator in the foreground until interrupted."""
    app = create_emulator_app(EmulatorState(pace=pace, faults=faults))
    uvicorn.run(app, host=host, port=port, log_level=log_level)
