"""A chain's rendered prompt: the messages the model would receive, without calling it.

The prompt is the chain's own first step (its ``ChatPromptTemplate``), so what is shown is
exactly what runs — placeholders spliced in, mustache and f-string alike. ``POST
/chains/{name}/render``, ``chainserve render`` and chain tests' ``prompt`` checks all read it.
"""

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableSequence

from service.chains.catalog import Chain

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
    assert isinstance(chain.runnable, RunnableSequence)
    prompt = chain.runnable.first
    assert isinstance(prompt, ChatPromptTemplate)
    return prompt.invoke(variables).to_messages()


def transcript(messages: list[dict[str, Any]]) -> str:
    """Rendered messages as ``role: content`` lines (what chain tests' ``prompt`` checks read)."""
    return "\n".join(f"{message['role']}: {message['content']}" for message in messages)


def _message(message: BaseMessage) -> dict[str, Any]:
    return {"role": _ROLES.get(message.type, message.type), "content": message.content}
