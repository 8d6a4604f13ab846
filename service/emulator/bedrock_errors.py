"""Bedrock's errors as the emulator sends them: HTTP errors before the stream (or for a whole
reply), and the exception events a stream fails with — status, code and message as Bedrock's.
"""

from typing import Any

from starlette.responses import JSONResponse, Response

_INTERNAL = "The system encountered an unexpected error during processing. Try your request again."
_UNAVAILABLE = "Bedrock is unable to process your request."
_TIMEOUT = "Model has timed out in processing."
_MODEL_FAILED = "The model failed to respond (emulated)."

# Fault kind → (HTTP status, Bedrock error code, message): the errors before the stream, as
# Bedrock answers them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "access_denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    "unknown_model": (400, "ValidationException", "The provided model identifier is invalid."),
    "not_found": (
        404,
        "ResourceNotFoundException",
        "This model version has reached the end of its life. Please refer to the AWS "
        "documentation for more details.",
    ),
    "quota_exceeded": (
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account. You can view your quotas at "
        "Viewing service quotas. You can resubmit your request later.",
    ),
    "model_error": (424, "ModelErrorException", "The model failed to process the request."),
    "internal": (500, "InternalServerException", _INTERNAL),
    "not_ready": (429, "ModelNotReadyException", "Model is not ready for inference."),
    "unavailable": (503, "ServiceUnavailableException", _UNAVAILABLE),
    "model_timeout": (408, "ModelTimeoutException", _TIMEOUT),
}
# In-stream fault kind → (exception event type, message, other members).
STREAM_ERRORS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "stream_error": (
        "modelStreamErrorException",
        "The model stream failed (emulated).",
        {"originalStatusCode": 500, "originalMessage": _MODEL_FAILED},
    ),
    "stream_throttle": ("throttlingException", "Too many tokens, please wait (emulated).", {}),
    "stream_internal": ("internalServerException", _INTERNAL, {}),
    "stream_validation": ("validationException", "Input is too long for requested model.", {}),
    "stream_unavailable": ("serviceUnavailableException", _UNAVAILABLE, {}),
    "stream_model_timeout": ("modelTimeoutException", _TIMEOUT, {}),
}
# ConverseStream has no modelTimeoutException event (InvokeModelWithResponseStream has): there
# the model's timeout is a modelStreamErrorException that carries its status.
CONVERSE_STREAM_TIMEOUT = (
    "modelStreamErrorException",
    "The model stream failed (emulated).",
    {"originalStatusCode": 408, "originalMessage": _TIMEOUT},
)
# In-stream fault kind → the HTTP error a non-streaming call (Converse, InvokeModel) gets.
STREAM_ERRORS_HTTP = {
    "stream_error": (424, "ModelErrorException", _MODEL_FAILED),
    "stream_corrupt": (500, "InternalServerException", _INTERNAL),
    "stream_throttle": (429, "ThrottlingException", "Too many tokens, please wait (emulated)."),
    "stream_internal": (500, "InternalServerException", _INTERNAL),
    "stream_validation": (400, "ValidationException", "Input is too long for requested model."),
    "stream_unavailable": (503, "ServiceUnavailableException", _UNAVAILABLE),
    "stream_model_timeout": (408, "ModelTimeoutException", _TIMEOUT),
}


def fault_error(kind: str, model: str) -> "BedrockError":
    """The HTTP error of a fault: one before the stream, or a stream fault's for a whole reply."""
    status, code, message = ERRORS.get(kind) or STREAM_ERRORS_HTTP[kind]
    fields: dict[str, Any] = {}
    if code == "ModelErrorException":
        fields = {"originalStatusCode": 500, "resourceName": model}
    return BedrockError(status, code, message, **fields)


class BedrockError(Exception):
    """An error response: ``fields`` are members beside ``message`` (``originalStatusCode``)."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> Response:
        return JSONResponse(
            {"message": self.message, **self.fields},
            status_code=self.status,
            headers={"x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/"},
        )
