"""The chains being served: each spec with its runnable and input models, reloadable.

Owned by the app (``app.state.catalog``), never module-level. A reload that finds errors keeps
serving the chains it had and reports the errors with file and line.
"""

import logging
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable

from service import errors
from service.inputs import ChainInputs
from service.loader import ChainFileError, ChainFileErrors, load_folder
from service.runnable import BedrockClients, build_runnable
from service.settings import Settings
from service.spec import ChainSpec

log = logging.getLogger("chainserve")


@dataclass(frozen=True)
class Chain:
    spec: ChainSpec
    runnable: Runnable[dict[str, Any], str]
    inputs: ChainInputs

    @property
    def name(self) -> str:
        assert self.spec.name is not None
        return self.spec.name

    @property
    def model_id(self) -> str:
        return self.spec.model.id

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.spec.description,
            "model": {"provider": self.spec.model.provider, "id": self.model_id},
            "inputs": {
                name: item.model_dump(exclude_none=True) | {"required": item.is_required}
                for name, item in self.spec.inputs.items()
            },
        }


class Catalog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients = BedrockClients(settings)
        self._chains: dict[str, Chain] = {}
        self.version = 0

    def load(self) -> None:
        """Load every chain file; raises :class:`ChainFileErrors` and keeps the old chains."""
        specs = load_folder(self._settings.chains_dir)
        chains, problems = {}, []
        for name, spec in specs.items():
            try:
                chains[name] = self._build(spec)
            except Exception as exc:  # langchain-aws and botocore check models as they build
                path, line = spec._source
                problems.append(ChainFileError(path, line, "model", f"cannot build: {exc}"))
        if problems:
            raise ChainFileErrors(problems)
        self._chains = chains
        self.version += 1

    def reload(self) -> bool:
        """Load again after a change; on errors, log them and keep serving what was loaded."""
        try:
            self.load()
        except ChainFileErrors as exc:
            for error in exc.errors:
                log.error("chain file error, keeping the previous chains: %s", error)
            return False
        log.info("reloaded chains: %s", ", ".join(self._chains) or "none")
        return True

    def get(self, name: str) -> Chain:
        chain = self._chains.get(name)
        if chain is None:
            raise errors.chain_not_found(name, sorted(self._chains))
        return chain

    def __iter__(self) -> Any:
        return iter(list(self._chains.values()))

    def __len__(self) -> int:
        return len(self._chains)

    def _build(self, spec: ChainSpec) -> Chain:
        settings = self._settings
        inputs = ChainInputs(spec, settings.max_input_length, settings.max_batch_size)
        return Chain(spec, build_runnable(spec, self._clients), inputs)
