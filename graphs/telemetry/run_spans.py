"""The spans of a graph run, its nodes and its tools, from LangGraph's callbacks.

- The run: `invoke_workflow {route}` (`gen_ai.operation.name` `invoke_workflow`,
  `gen_ai.agent.name` the route), a child of the request's span.
- Each node: its name (`langgraph.node`, `langgraph.step`), a child of the run's. What the node
  does finds its span as its parent (`run_parent`, from the run config LangGraph sets for the
  node's code), so the model calls and Redis round trips it makes are its children. (The span
  is never made current with OpenTelemetry's attach: LangGraph ends a node's run in a task of
  its own, where a detach fails.)
- Each tool: `execute_tool {tool}` (`gen_ai.tool.name`), a child of its node.

Nothing of a run's inputs or outputs is recorded. The handler takes no model, token or
retriever events: a model call under it stays unobserved (`graphs/model/unobserved.py`), so
tracing adds no callback per token.
"""

from __future__ import annotations

import contextvars
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.runnables.config import var_child_runnable_config
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from graphs.telemetry.tracer import TRACER, tracing

# Not failures: how LangGraph stops a run for a person (`interrupt`) or hands over to a parent.
CONTROL_FLOW = {"GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp"}


class RunSpans(BaseCallbackHandler):
    """One run's spans (a handler per run: it keeps the run's spans by run id)."""

    run_inline = True  # no thread hop per event

    @property
    def ignore_llm(self) -> bool:
        return True

    @property
    def ignore_chat_model(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    def __init__(self, route: str, principal: str) -> None:
        self.route, self.principal = route, principal
        self._spans: dict[UUID, Span] = {}
        self._owner: dict[UUID, UUID] = {}  # a run without a span: the run whose span it is in

    def span_of(self, run_id: UUID | None) -> Span | None:
        """The span of run `run_id`, or of the nearest run around it that has one."""
        while run_id is not None and run_id not in self._spans:
            run_id = self._owner.get(run_id)
        return None if run_id is None else self._spans[run_id]

    def _start(
        self,
        run_id: UUID,
        parent: Span | None,
        name: str,
        attributes: dict[str, Any],
    ) -> None:
        context = trace.set_span_in_context(parent) if parent is not None else None
        self._spans[run_id] = TRACER.start_span(name, context=context, attributes=attributes)

    def _end(self, run_id: UUID, error: BaseException | None = None) -> None:
        self._owner.pop(run_id, None)
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        if error is not None and type(error).__name__ in CONTROL_FLOW:
            span.add_event("interrupt" if "Interrupt" in type(error).__name__ else "handoff")
        elif error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or ""
        node = (metadata or {}).get("langgraph_node")
        if parent_run_id is None:
            attributes = {
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.agent.name": self.route,
                "user.id": self.principal,
            }
            self._start(run_id, None, f"invoke_workflow {self.route}", attributes)
        elif node is not None and node == name and run_id not in self._spans:
            step = (metadata or {}).get("langgraph_step", -1)
            attributes = {"langgraph.node": node, "langgraph.step": step}
            self._start(run_id, self.span_of(parent_run_id), node, attributes)
        else:
            self._owner[run_id] = parent_run_id

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        tool = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
        self._start(run_id, self.span_of(parent_run_id), f"execute_tool {tool}", attributes)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)


def with_run_spans(callbacks: Any, route: str, principal: str) -> Any:
    """A run config's `callbacks` with a `RunSpans` of the run added, when spans go anywhere."""
    if not tracing():
        return callbacks
    spans = RunSpans(route, principal)
    if callbacks is None:
        return [spans]
    if isinstance(callbacks, list):
        return [*callbacks, spans]
    manager = callbacks.copy()
    manager.add_handler(spans, inherit=True)
    return manager


def run_parent() -> Context | None:
    """The span of the node (or tool) whose code runs now, as a parent, when its run is traced:
    LangGraph gives a node's code its run config, whose callbacks name the node's run."""
    config = var_child_runnable_config.get()
    manager = (config or {}).get("callbacks")
    if not isinstance(manager, BaseCallbackManager):
        return None
    for handler in manager.handlers:
        if isinstance(handler, RunSpans):
            span = handler.span_of(manager.parent_run_id)
            return None if span is None else trace.set_span_in_context(span)
    return None


def within(context: contextvars.Context, parent: Context | None) -> None:
    """Make `parent` the current span of `context`, a context of a task's own (nothing detaches
    it: it ends with the task)."""
    if parent is not None:
        context.run(otel_context.attach, parent)
