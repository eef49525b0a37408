"""The chat route's prompt: `SYSTEM_PROMPT` before the conversation, or a `PROMPT_FILE`.

A prompt file is TOML: a `messages` list of `[role, template]` pairs, in order. A role is
`system`, `human`, `ai` or `placeholder`; a template is an f-string over the turn's variables:

- `{history}`: the session's earlier messages (a placeholder),
- `{turn}`: the turn's messages, usually the question (a placeholder),
- `{question}`: the text of the turn's last human message.

    messages = [
      ["system", "You are the support assistant of Example Ltd. Be brief."],
      ["placeholder", "{history}"],
      ["placeholder", "{turn}"],
    ]

Literal braces in a template are doubled (`{{` and `}}`).
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from graphs.settings import read_toml_setting

TURN_VARIABLES = frozenset({"history", "turn", "question"})
ROLES = frozenset({"system", "human", "ai", "placeholder"})


class PromptFileError(ValueError):
    """A prompt file that cannot serve a conversation; the message names the file and why."""


def system_prompt(text: str) -> ChatPromptTemplate:
    """The system message (taken literally: braces are not variables), the history, the turn."""
    return ChatPromptTemplate.from_messages(
        [
            SystemMessage(content=text),
            MessagesPlaceholder("history", optional=True),
            MessagesPlaceholder("turn"),
        ]
    )


def load_prompt_file(path: Path, *, keeps_sessions: bool = True) -> ChatPromptTemplate:
    """The prompt of a TOML prompt file, checked: known roles and variables only, the turn
    present, and the history too when the route keeps sessions."""
    data = read_toml_setting(path, "PROMPT_FILE", PromptFileError)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptFileError(f"PROMPT_FILE {path}: needs a non-empty `messages` list")
    pairs: list[tuple[str, str]] = []
    for entry in messages:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(part, str) for part in entry)
        ):
            raise PromptFileError(f"PROMPT_FILE {path}: each message is [role, template]")
        if entry[0] not in ROLES:
            raise PromptFileError(
                f"PROMPT_FILE {path}: unknown role {entry[0]!r}; use {sorted(ROLES)}"
            )
        pairs.append((entry[0], entry[1]))
    try:
        prompt = ChatPromptTemplate.from_messages(pairs)
    except (ValueError, KeyError) as exc:
        raise PromptFileError(f"PROMPT_FILE {path}: {exc}") from None
    check_variables(prompt, str(path), keeps_sessions=keeps_sessions)
    return prompt


def check_variables(prompt: ChatPromptTemplate, source: str, *, keeps_sessions: bool) -> None:
    variables = set(prompt.input_variables) | set(prompt.optional_variables)
    unknown = variables - TURN_VARIABLES
    if unknown:
        raise PromptFileError(
            f"PROMPT_FILE {source}: unknown variables {sorted(unknown)}; "
            f"a template may use {sorted(TURN_VARIABLES)}"
        )
    if not variables & {"turn", "question"}:
        raise PromptFileError(
            f"PROMPT_FILE {source}: the prompt must hold {{turn}} or {{question}}"
        )
    if keeps_sessions and "history" not in variables:
        raise PromptFileError(
            f"PROMPT_FILE {source}: a route with sessions needs a {{history}} placeholder"
        )
