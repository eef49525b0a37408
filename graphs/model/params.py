"""Per-request generation parameters: what a client may ask of the model, within the server's
bounds. They arrive as LangServe configurable fields or as `/v1` fields, travel with the turn,
and graphgate's model passes them to every provider call of the turn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphs.errors import InvalidInput

# OpenAI's own bounds: at most four stop sequences.
MAX_STOP_SEQUENCES = 4
PARAMETER_NAMES = ("temperature", "top_p", "max_tokens", "stop", "seed")


class ModelParams(BaseModel):
    """Generation parameters of one turn; None leaves the provider's (or the chain's) default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: tuple[str, ...] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**63)

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of a provider call: the parameters the client set."""
        kwargs = self.model_dump(exclude_none=True, exclude={"stop"})
        if self.stop:
            kwargs["stop"] = list(self.stop)
        return kwargs


def read_params(values: Mapping[str, Any], max_output_tokens: int) -> ModelParams:
    """The parameters among `values` (other keys are ignored), or 400 naming the one at fault.
    `stop` may be one string, as OpenAI allows."""
    chosen = {name: values[name] for name in PARAMETER_NAMES if values.get(name) is not None}
    if isinstance(chosen.get("stop"), str):
        chosen["stop"] = [chosen["stop"]]
    try:
        params = ModelParams.model_validate(chosen)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "parameters"
        raise InvalidInput(f"Invalid `{field}`: {error['msg']}.") from None
    if params.max_tokens is not None and params.max_tokens > max_output_tokens:
        raise InvalidInput(
            f"Invalid `max_tokens`: {params.max_tokens} is above the server's "
            f"MAX_OUTPUT_TOKENS={max_output_tokens}."
        )
    return params
