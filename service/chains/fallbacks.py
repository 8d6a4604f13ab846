"""Fallbacks: LangChain's ``with_fallbacks`` over the chain's models, moving on only when a
model failed before its first token.

``with_fallbacks`` streams a model by taking its first chunk and moving on if that fails. A
Bedrock stream's first chunk is its start (the role, no text), and a stream may still fail
after it — throttled, unavailable — before any text. So each model is wrapped in
:class:`FirstToken`, whose first chunk is the model's first output: chunks before it are held
back, and such a failure is raised as the error Bedrock gives before a stream opens (an
in-stream ``throttlingException`` as botocore's ``ThrottlingException``), which is a failure
another model may answer. After the first token nothing is retried: output was sent.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig

from service.chains.models import is_output

# Failures inside a stream (botocore's EventStreamError codes) that are, before the first
# token, the failures another model may answer: the same as these errors before a stream.
_IN_STREAM = {
    "throttlingException": "ThrottlingException",
    "serviceUnavailableException": "ServiceUnavailableException",
    "modelTimeoutException": "ModelTimeoutException",
}


def fallback_errors(model: BaseChatModel) -> tuple[type[BaseException], ...]:
    """The failures another model may answer instead: throttling, the model or service not
    available, a model timeout, no connection to the endpoint or no reply within the read
    timeout. Not the caller's own (validation, access, quota): another model would fail too.

    botocore makes one exception class per error code and service, shared by every client,
    so ``model``'s client's classes are every Bedrock Runtime client's.
    """
    from botocore.exceptions import ConnectionError, ReadTimeoutError

    modeled = model.client.exceptions  # type: ignore[attr-defined]
    return (
        modeled.ThrottlingException,
        modeled.ServiceUnavailableException,
        modeled.ModelNotReadyException,
        modeled.ModelTimeoutException,
        ReadTimeoutError,
        ConnectionError,
    )


def with_fallbacks(
    models: list[Runnable[Any, Any]], chat_models: list[BaseChatModel]
) -> Runnable[Any, Any]:
    """``models[0]``, then each of the others in order when the one before failed before its
    first token (``chat_models``: the chat model each of ``models`` runs, for its client)."""
    first, *others = [
        FirstToken(bound=model, client=chat.client)  # type: ignore[attr-defined]
        for model, chat in zip(models, chat_models, strict=True)
    ]
    return first.with_fallbacks(others, exceptions_to_handle=fallback_errors(chat_models[0]))


# (pydantic's mypy plugin trips over RunnableBinding's own `kwargs` field when a field is added)
class FirstToken(RunnableBinding[Any, Any]):  # type: ignore[no-redef]
    """A model whose stream yields nothing until the model's first token (see the module)."""

    client: Any = None
    """The model's boto3 client: its exception classes are what a failure is raised as."""

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        chunks = super().stream(input, config, **kwargs)
        held = []
        try:
            for chunk in chunks:
                held.append(chunk)
                if is_output(chunk):
                    break
        except Exception as exc:
            raise self._before_first_token(exc) from None
        yield from held
        yield from chunks

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        chunks = super().astream(input, config, **kwargs)
        held = []
        try:
            async for chunk in chunks:
                held.append(chunk)
                if is_output(chunk):
                    break
        except Exception as exc:
            raise self._before_first_token(exc) from None
        for chunk in held:
            yield chunk
        async for chunk in chunks:
            yield chunk

    def _before_first_token(self, exc: Exception) -> Exception:
        """An in-stream failure as the error Bedrock gives before a stream (same mapping)."""
        from botocore.exceptions import EventStreamError, ReadTimeoutError
        from urllib3.exceptions import ReadTimeoutError as StreamReadTimeout

        if isinstance(exc, StreamReadTimeout):  # the stream opened, then no token in time
            timeout: Exception = ReadTimeoutError(endpoint_url=self.client.meta.endpoint_url)
            timeout.__cause__ = exc
            return timeout
        if not isinstance(exc, EventStreamError):
            return exc
        modeled = _IN_STREAM.get(str(exc.response.get("Error", {}).get("Code")))
        if modeled is None:
            return cast(Exception, exc)
        error: Exception = getattr(self.client.exceptions, modeled)(
            exc.response, exc.operation_name
        )
        error.__cause__ = exc
        return error
