"""A chain's rendered prompt: the messages the model would receive, without calling it.

The prompt is the chain's own first step (its ``ChatPromptTemplate``), so what is shown is
exactly what runs — placeholders spliced in, mustache and f-string alike. ``POST
/chains/{name}/render``, ``chainserve render`` and chain tests' ``prompt`` checks all read it.
"""

from typing import Any

from langchain_core.messages import BaseMessage

from service.chains.catalog import Chain
from service.chains.images import shown_part

# LangChain's message types → the roles chain files and Bedrock use.
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def render(chain: Chain, variables: dict[str, Any]) -> dict[str, Any]:
    """``{"messages": [{"role", "content"}], "model", "provider", "params"}`` for validated
    ``variables`` (as :class:`service.chains.inputs.ChainInputs` returns them)."""
    model = chain.spec.model
    return {
        "messages": [_message(message) for message in render_messages(chain, variables)],
        "model": model.id,
        "provider": model.provider,
        "params": model.params.model_dump(exclude_none=True),
    }


def render_messages(chain: Chain, variables: dict[str, Any]) -> list[BaseMessage]:
    return chain.assembly.prompt.invoke(variables).to_messages()


def transcript(messages: list[dict[str, Any]]) -> str:
    """Rendered messages as ``role: content`` lines (what chain tests' ``prompt`` checks read)."""
    return "\n".join(f"{message['role']}: {message['content']}" for message in messages)


def _message(message: BaseMessage) -> dict[str, Any]:
    content = message.content
    if isinstance(content, list):  # a user message with images: its parts as lines of text
        content = "\n".join(shown_part(part) for part in content)
    return {"role": _ROLES.get(message.type, message.type), "content": content}
