"""Strict tool arguments: every tool refuses what a lax reading would quietly accept.

The SDK validates tool arguments in pydantic's lax mode and drops names it does not know, so `force: "yes"`
became `True` (and re-billed a request), and `timeout` for `timeout_seconds` was ignored. A `StrictTool`
checks a call's arguments before the SDK sees them:

- an argument name the tool does not have is refused, naming it and the accepted ones;
- text anywhere in the arguments (keys too) may hold no control character but newline and tab, and no
  unpaired surrogate, so nothing of the kind is ever sent to CCAPI (or billed);
- values are validated in pydantic's strict mode: no string-to-boolean or string-to-number coercion. The one
  leniency kept is a JSON array or object sent inside a string (some clients do that for every list).

Every refusal is one `ToolError` that names the field and, for billable tools, says nothing was submitted.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, cast

import anyio
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.resolve import build_resolver_plans, find_resolved_parameters
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata, func_metadata
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, PrivateAttr, ValidationError

from ccapi_suno_mcp._json import json_list, json_object
from ccapi_suno_mcp.ledger import LedgerUnavailableError, LedgerUnusableError
from ccapi_suno_mcp.settings import DEFAULT_CALL_DEADLINE

__all__ = ["ALLOWED_CONTROLS", "StrictTool", "argument_model", "text_problem", "validation_message"]

ALLOWED_CONTROLS = frozenset("\n\t")
"""The only control characters text arguments may hold."""


def validation_message(tool: str, error: ValidationError, *, billable: bool) -> str:
    """One readable sentence naming each bad field and what is wrong with it."""
    problems: list[str] = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "input"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(message if message.split(":")[0] in where or not item["loc"] else f"{where}: {message}")
    return _refusal(tool, "; ".join(problems), billable=billable)


def _refusal(tool: str, problem: str, *, billable: bool) -> str:
    suffix = " Nothing was submitted." if billable else ""
    return f"Invalid input for {tool}: {problem}.{suffix}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (object keys included), with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif (fields := json_object(value)) is not None:
        for key, item in fields.items():
            yield f"{path} key", str(key)
            yield from _strings(item, f"{path}.{key}")
    elif (items := json_list(value)) is not None:
        for index, item in enumerate(items):
            yield from _strings(item, f"{path}[{index}]")


def _bad_character(text: str) -> tuple[int, str] | None:
    for position, character in enumerate(text):
        if character in ALLOWED_CONTROLS:
            continue
        category = unicodedata.category(character)
        if category == "Cc":
            return position, f"the control character U+{ord(character):04X}"
        if category == "Cs":
            return position, f"an unpaired surrogate U+{ord(character):04X}"
    return None


def text_problem(arguments: dict[str, Any]) -> str | None:
    """What is wrong with the text in `arguments`, naming the field; None when all text is clean."""
    for path, text in _strings(arguments, ""):
        if text.isprintable() or not (found := _bad_character(text)):
            continue
        position, what = found
        return f"{path.lstrip('.')}: contains {what} at position {position}; only newline and tab are allowed"
    return None


def _inside_json_string(value: Any) -> Any:
    """A JSON array or object that a client sent as a string, parsed; anything else as it came."""
    if not isinstance(value, str) or not value.lstrip().startswith(("[", "{")):
        return value
    try:
        parsed: object = json.loads(value)
    except (ValueError, RecursionError):
        return value
    as_object, as_list = json_object(parsed), json_list(parsed)
    return as_object if as_object is not None else as_list if as_list is not None else value


DEADLINE_GRACE = 2.0
"""Seconds beyond the call deadline before a tool call is cut off as a whole."""
QUESTION_DEADLINE = 600.0
"""Seconds a tool call that asks the user a question (elicitation) may wait for the answer; the call deadline
then bounds the rest of the call."""


def _call_deadline(context: Context[Any, Any]) -> float:
    try:
        settings = getattr(context.request_context.lifespan_context, "settings", None)
    except ValueError:  # called outside a request (no request context)
        settings = None
    deadline = getattr(settings, "call_deadline", None)
    return float(deadline) if isinstance(deadline, int | float) else DEFAULT_CALL_DEADLINE


def argument_model(function: Callable[..., Any]) -> type[ArgModelBase]:
    """The strict model of a tool function's arguments: the SDK's, in strict mode, refusing unknown names.

    The context parameter and `Resolve(...)` parameters are not arguments: the SDK fills them.
    """
    skip = [find_context_parameter(function) or "ctx", *find_resolved_parameters(function)]
    loose = func_metadata(function, skip_names=skip, structured_output=False).arg_model
    config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)
    return cast(type[ArgModelBase], type(loose.__name__, (loose,), {"model_config": config}))


def _within_call_deadline(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` bounded by the call deadline on its own, so that a question asked before it runs is not."""

    async def bounded(**kwargs: Any) -> Any:
        limit = _call_deadline(kwargs["ctx"]) + DEADLINE_GRACE
        with anyio.move_on_after(limit):
            return await function(**kwargs)
        raise ToolError(_timed_out(limit))

    return bounded


def _timed_out(limit: float) -> str:
    return f"it did not finish within {limit:.0f} s; try again shortly (CCAPI_SUNO_DEADLINE_SECONDS sets the limit)."


class _Checked(FuncMetadata):
    """Arguments `StrictTool.check` has already validated: handed to the function as they are."""

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return arguments_to_validate


async def _not_loaded(**_: Any) -> None:  # pragma: no cover - replaced before any call
    raise RuntimeError("the tool's function is loaded on its first call")


class StrictTool(Tool):
    """An SDK `Tool` listed from the snapshot, built on its first call, whose arguments are checked strictly.

    `listed(...)` makes one from its `listing.json` entry and a factory of its function; the function, its
    argument model and its resolvers are made on the first call. `billable` tools add "Nothing was
    submitted." to every refusal.
    """

    # Made from the checked-in listing with `model_construct`, so pydantic never builds this model's validator.
    model_config = ConfigDict(defer_build=True)

    billable: bool = False
    bounded: bool = True
    """Whether the call deadline bounds the whole call (`suno_wait_for_tasks` bounds itself by timeout_seconds)."""
    _factory: Callable[[], Callable[..., Any]] | None = PrivateAttr(default=None)
    _strict_model: type[ArgModelBase] | None = PrivateAttr(default=None)

    @classmethod
    def listed(
        cls, entry: dict[str, Any], *, factory: Callable[[], Callable[..., Any]], billable: bool, bounded: bool
    ) -> StrictTool:
        """The tool as `listing.json` lists it; `factory` makes its function on the first call.

        The listing is the code's own (a test holds it equal to the derivation), so it is not validated again.
        """
        tool = cls.model_construct(
            fn=_not_loaded,
            name=entry["name"],
            title=entry.get("title"),
            description=entry["description"],
            parameters=entry["inputSchema"],
            fn_metadata=_Checked.model_construct(arg_model=ArgModelBase, output_schema=entry["outputSchema"]),
            is_async=True,
            context_kwarg="ctx",
            annotations=ToolAnnotations.model_validate(entry["annotations"]),
            meta=entry.get("_meta"),
            billable=billable,
            bounded=bounded,
        )
        tool._factory = factory
        return tool

    @property
    def argument_names(self) -> list[str]:
        """The names a call may use, as listed."""
        properties: dict[str, Any] = self.parameters.get("properties", {})
        return list(properties)

    def _model(self) -> type[ArgModelBase]:
        if self._strict_model is None:
            function = self._factory() if self._factory is not None else self.fn
            model = argument_model(function)
            resolved = dict(find_resolved_parameters(function))
            # A question to the user (a resolver) may take longer than the call deadline: bound the body alone.
            self.fn = _within_call_deadline(function) if resolved and self.bounded else function
            self.resolved_params = resolved
            self.resolver_plans = build_resolver_plans(resolved, set(self.argument_names))
            self._strict_model = model
        return self._strict_model

    def check(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the tool's function will receive them (every argument, defaults filled in).

        Raises:
            ToolError: for an unknown name, bad text or a value of the wrong type or out of its limits.
        """
        names = self.argument_names
        unknown = sorted(name for name in arguments if name not in names)
        if unknown:
            import difflib

            hints = [match for name in unknown for match in difflib.get_close_matches(name, names, n=1)]
            hint = f"; did you mean {', '.join(hints)}?" if hints else ""
            problem = f"unknown parameter(s) {', '.join(unknown)} (it takes {', '.join(names) or 'none'}){hint}"
            raise ToolError(self._error(problem))
        if (problem := text_problem(arguments)) is not None:
            raise ToolError(self._error(problem))
        prepared = {name: _inside_json_string(value) for name, value in arguments.items()}
        try:
            validated = self._model().model_validate(prepared)
        except ValidationError as exc:
            raise ToolError(
                f"Error executing tool {self.name}: {validation_message(self.name, exc, billable=self.billable)}"
            ) from None
        return validated.model_dump_one_level()

    def _error(self, problem: str) -> str:
        return f"Error executing tool {self.name}: {_refusal(self.name, problem, billable=self.billable)}"

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        """Check the arguments strictly, then run the tool as the SDK does.

        Raises:
            ToolError: for arguments the strict check refuses, for a ledger that cannot be used, and as
                `Tool.run` does.
        """
        checked = self.check(arguments)
        # A last guard only: the parts that reach CCAPI keep the call deadline themselves, with a graceful answer.
        # A tool that may ask the user has its body bounded alone (see _model) and its question here.
        asks = bool(self.resolved_params)
        limit = _call_deadline(context) + DEADLINE_GRACE + (QUESTION_DEADLINE if asks else 0) if self.bounded else None
        try:
            with anyio.fail_after(limit):
                return await super().run(checked, context, convert_result=convert_result)
        except TimeoutError:
            problem = f"no answer to its question came within {limit:.0f} s; nothing was sent" if asks else None
            raise ToolError(f"Error executing tool {self.name}: {problem or _timed_out(limit or 0)}") from None
        except UnexpectedToolError as exc:
            if isinstance(exc.__cause__, LedgerUnusableError | LedgerUnavailableError):  # say what and how
                # A billable call records its submission before sending it: a ledger that failed sent nothing.
                billed = " Nothing was sent to CCAPI, so nothing was billed." if self.billable else ""
                raise ToolError(
                    f"Error executing tool {self.name}: {str(exc.__cause__).rstrip('.')}.{billed}"
                ) from None
            raise
