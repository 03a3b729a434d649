"""The action tools: one per catalogue row, generated, never written out 22 times.

Each tool's parameters are its request model's fields, flat, with their limits and enums, plus
`force`. A call validates, finds a follow-up's parent task in the ledger, refuses an accidental
double submit, asks the user first when it would pass a budget (or always, if so configured),
records the submission (reserving its learned price) before sending it, and records the task id
the moment CCAPI answers.

The question is a `Resolve(...)` parameter, so it works in both protocol eras: a live
`elicitation/create` on 2025-era connections, an `InputRequiredResult` round trip on 2026-07-28.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

import anyio
import anyio.lowlevel
from mcp.server.mcpserver import (
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field, ValidationError

from ccapi_suno_mcp import ccapi
from ccapi_suno_mcp.catalogue import ActionSpec, Catalogue, CatalogueError
from ccapi_suno_mcp.ccapi.requests import SunoRequest
from ccapi_suno_mcp.errors import no_key_message, redact
from ccapi_suno_mcp.ledger import DEFAULT_DUPLICATE_WINDOW, LedgerError, OverBudgetError, TaskRecord
from ccapi_suno_mcp.spend import Approval, Budgets, Quote, over_budget_message, quote
from ccapi_suno_mcp.state import AppState, app_state
from ccapi_suno_mcp.tools._status import tool_result
from ccapi_suno_mcp.tools._strict import validation_message
from ccapi_suno_mcp.views import SubmittedTask, render_submitted

__all__ = ["action_function"]

logger = logging.getLogger(__name__)

SOURCE_FIELDS = ("clip_id", "clip_ids", "task_id")
"""Our fields that name a source clip or its task: with principals kept apart, checked against the caller's own."""
_SOURCE_SUFFIXES = ("clip_id", "clip_ids", "task_id", "task_ids")

IN_FLIGHT_POLL_SECONDS = 0.05
"""How often that wait reads the ledger (every tenth time it also checks the sender still lives)."""

_FORCE = inspect.Parameter(
    "force",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[
        bool,
        Field(description="Bill a duplicate again."),
    ],
)


def _parameters(spec: ActionSpec) -> list[inspect.Parameter]:
    """The request model's fields as keyword parameters that carry their constraints and descriptions."""
    parameters: list[inspect.Parameter] = []
    fields = sorted(spec.request.model_fields.items(), key=lambda item: (not item[1].is_required(), item[0] == "extra"))
    for name, field in fields:
        annotation = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]  # pyright: ignore[reportInvalidTypeArguments] - a runtime-built Annotated
        default = inspect.Parameter.empty if field.is_required() else field.default
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
    return parameters


async def _resolve_parent(state: AppState, spec: ActionSpec, request: SunoRequest) -> tuple[str | None, str | None]:
    """The follow-up's parent task and clip: the explicit task_id, else the clip's task in the ledger.

    Raises:
        ToolError: for a clip the ledger does not know (without task_id) or one that is not finished.
    """
    clip_id: str | None = getattr(request, "clip_id", None)
    clip_ids: list[str] | None = getattr(request, "clip_ids", None)
    isolated = state.settings.isolated
    if clip_id is None and clip_ids:
        clips = [await state.ledger.get_clip(each) for each in (clip_ids if isolated else clip_ids[:1])]
        if isolated and None in clips:
            unknown = clip_ids[clips.index(None)]
            raise ToolError(
                f"Unknown clip {unknown}: it is not among your tasks (find yours with suno_list_tasks). Nothing was "
                "submitted."
            )
        return (clips[0].task_id if clips[0] else None), clip_ids[0]
    if clip_id is None:
        return None, None
    explicit: str | None = getattr(request, "task_id", None)
    clip = await state.ledger.get_clip(clip_id)
    if explicit is not None and not isolated:  # kept apart, only the principal's own clips may be followed up
        return explicit, clip_id
    if clip is None and isolated:
        raise ToolError(
            f"Unknown clip {clip_id}: it is not among your tasks (find yours with suno_list_tasks). Nothing was "
            "submitted."
        )
    if clip is None:
        raise ToolError(
            f"Unknown clip {clip_id}: this server has no record of it. Pass task_id (the task_... that produced "
            "the clip), or find the clip with suno_list_tasks. Nothing was submitted."
        )
    if explicit is not None and explicit != clip.task_id:
        raise ToolError(
            f"Clip {clip_id} belongs to task {clip.task_id}, not {explicit}: pass its own task_id, or leave task_id "
            "out. Nothing was submitted."
        )
    parent = await state.ledger.get_task(clip.task_id)
    if parent is not None and parent.status != "SUCCESS":
        raise ToolError(
            f"Clip {clip_id} is not finished yet (its task {clip.task_id} is {parent.status}): wait for it with "
            "suno_wait_for_tasks first. Nothing was submitted."
        )
    return clip.task_id, clip_id


def _refuse_sources_in_extra(catalogue: Catalogue, request: SunoRequest) -> None:
    """With principals kept apart, `extra` cannot name a source clip or task: CCAPI (one key for everyone) would
    follow up any clip it is given, so only the named fields, checked against the caller's own tasks, may.

    Raises:
        ToolError: for an `extra` field that is a source field's name on the wire, or looks like one.
    """
    wire_names = {spec.wire_name(name) for spec in catalogue for name in SOURCE_FIELDS}
    for key in request.extra or {}:
        if key in wire_names or key.lower().endswith(_SOURCE_SUFFIXES):
            raise ToolError(
                f"extra.{key}: on a server shared by several people a source clip or task is named only by "
                "clip_id or clip_ids (checked against your own tasks), never in extra. Nothing was submitted."
            )


async def _settled(state: AppState, record: TaskRecord) -> TaskRecord:
    """The duplicate once its own submit has an answer: an identical call in flight is waited for, not failed.

    If the process sending it dies meanwhile, the ledger settles it as outcome unknown and the wait ends.
    """
    # The first call's submit is bounded by the call deadline: wait as long, no longer.
    with anyio.move_on_after(state.settings.call_deadline):
        polls = 0
        while record.state == "submitting":
            await anyio.sleep(IN_FLIGHT_POLL_SECONDS)
            polls += 1
            if polls % 10 == 0:
                await state.ledger.settle_interrupted()
            record = await state.ledger.get_submission(record.submission_id) or record
    return record


async def _duplicate_answer(state: AppState, spec: ActionSpec, existing: TaskRecord, priced: Quote) -> CallToolResult:
    existing = await _settled(state, existing)
    if existing.state == "rejected":
        raise ToolError(
            redact(
                f"An identical {spec.tool} request was just refused by CCAPI ({existing.error}); nothing was billed. "
                "Change the request before trying again.",
                state.settings.api_key,
            )
        )
    if existing.state == "submitting":
        raise ToolError(
            f"An identical {spec.tool} request is still being sent to CCAPI; do not submit it again. Call "
            "suno_list_tasks in a minute to find its task_id."
        )
    if existing.task_id is None:
        seconds = max(0, int(state.ledger.now() - existing.created_at))  # on the ledger's clock, as it was stamped
        when = f"{seconds // 60} minute(s) ago" if seconds >= 60 else "moments ago"
        raise ToolError(
            redact(
                f"An identical {spec.tool} request was sent {when} and its outcome is unknown "
                f"({existing.error or 'no answer'}); it may have been billed. Check suno_list_tasks with status "
                "outcome_unknown and suno_get_balance first; pass force=true to submit again anyway.",
                state.settings.api_key,
            )
        )
    view = render_submitted(existing, reused=True, price=priced.price)
    return tool_result(view, view.note or "")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A valid call, ready to be sent: its body and the parent it follows up."""

    body: dict[str, Any]
    parent_task_id: str | None
    parent_clip_id: str | None


async def _prepare(state: AppState, spec: ActionSpec, catalogue: Catalogue, arguments: dict[str, Any]) -> _Prepared:
    """Validate the arguments and build the body, before anything is asked or sent.

    Raises:
        ToolError: for invalid input, an unknown or unfinished parent clip, or a missing key.
    """
    names = list(spec.request.model_fields)
    try:
        request = spec.request.model_validate({name: arguments[name] for name in names if name in arguments})
    except ValidationError as exc:
        raise ToolError(validation_message(spec.tool, exc, billable=True)) from None
    if state.settings.isolated:
        _refuse_sources_in_extra(catalogue, request)
    parent_task_id, parent_clip_id = await _resolve_parent(state, spec, request)
    if parent_task_id is not None and "task_id" in names:
        request = request.model_copy(update={"task_id": parent_task_id})
    try:
        body = catalogue.build_body(spec, request)
    except CatalogueError as exc:
        raise ToolError(f"Invalid input for {spec.tool}: {exc}. Nothing was submitted.") from None
    if not state.client.has_api_key:
        raise ToolError(no_key_message(state.settings.api_key_placeholder, state.settings.api_key_problem))
    return _Prepared(body, parent_task_id, parent_clip_id)


async def _quote(state: AppState, spec: ActionSpec) -> Quote:
    ledger = state.ledger
    budgets = Budgets.of(state.settings, ledger.principal)
    return await quote(ledger, budgets, state.calendar, tool=spec.tool, action=spec.action)


def can_ask(ctx: Context[Any, Any]) -> bool:
    """Whether the user can be asked a form question on this call (elicitation, in either protocol era)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False  # no elicitation, or URL mode only
    version = ctx.protocol_version
    if version is not None and version >= "2026-07-28":
        return True  # asked through an InputRequiredResult round trip
    return ctx.session.can_send_request


def _approval_resolver(spec: ActionSpec, catalogue: Catalogue) -> Callable[..., Awaitable[Elicit[Approval] | None]]:
    """The resolver that decides, before the call is sent, whether the user must approve it, and asks.

    It returns no question for a call that needs no approval or is a duplicate (which bills nothing), refuses
    with the facts when the client cannot ask, and otherwise asks the one question of the quote.
    """

    async def ask_before_paying(ctx: Context[AppState, Any], **arguments: Any) -> Elicit[Approval] | None:
        state = app_state(ctx)
        force: bool = arguments.pop("force", False)
        prepared = await _prepare(state, spec, catalogue, arguments)
        if not force and await state.ledger.find_duplicate(spec.action, prepared.body) is not None:
            return None  # an identical request returns its task: nothing is paid, nothing to ask
        priced = await _quote(state, spec)
        if not priced.needs_approval:
            return None
        if not can_ask(ctx):
            raise ToolError(priced.refusal())
        return Elicit(priced.question(), Approval)

    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context[AppState, Any])
    names = [*spec.request.model_fields, "force"]  # the tool's arguments, passed by name
    by_name = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in names]
    ask_before_paying.__signature__ = inspect.Signature([context, *by_name])  # pyright: ignore[reportFunctionMemberAccess] - read by inspect.signature
    ask_before_paying.__annotations__ = {"ctx": Context[AppState, Any], "return": Elicit[Approval] | None}
    return ask_before_paying


def _approved(outcome: ElicitationResult[Approval]) -> bool | None:
    """True: the user approved; False: nobody was asked; None: the user said no (declined or cancelled)."""
    if isinstance(outcome, DeclinedElicitation | CancelledElicitation):
        return None
    data = cast(object, outcome.data)  # the resolver's plain None when it asked nothing
    if isinstance(data, Approval):
        return True if data.approve else None
    return False


def action_function(spec: ActionSpec, catalogue: Catalogue) -> Callable[..., Awaitable[CallToolResult]]:
    """The tool function of one catalogue action: its request model's fields (flat) and `force` as parameters."""

    async def submit_action(
        ctx: Context[AppState, Any], approval: ElicitationResult[Approval], **arguments: Any
    ) -> CallToolResult:
        state = app_state(ctx)
        force: bool = arguments.pop("force", False)
        prepared = await _prepare(state, spec, catalogue, arguments)
        approved = _approved(approval)
        priced = await _quote(state, spec)
        if approved is None:
            raise ToolError(priced.declined("cancel" if isinstance(approval, CancelledElicitation) else "decline"))
        if priced.budgets.confirm == "always" and not approved:
            # Asked nothing because the call looked like a duplicate: it must still be one, or the user is asked.
            existing = None if force else await state.ledger.find_duplicate(spec.action, prepared.body)
            if existing is None:
                raise ToolError(
                    f"{spec.tool} needs the user's approval (CCAPI_SUNO_CONFIRM=always) and was not sent: call it "
                    "again to ask."
                )
            return await _duplicate_answer(state, spec, existing, priced)
        try:
            record, is_new = await state.ledger.begin_unless_duplicate(
                tool=spec.tool, action=spec.action, body=prepared.body, parent_task_id=prepared.parent_task_id,
                parent_clip_id=prepared.parent_clip_id, within_seconds=None if force else DEFAULT_DUPLICATE_WINDOW,
                budget=priced.gate(approved=approved),
            )  # fmt: skip
        except OverBudgetError as exc:  # a call in flight took the room the quote saw
            raise ToolError(over_budget_message(priced, exc, can_ask=can_ask(ctx))) from None
        if not is_new:
            return await _duplicate_answer(state, spec, record, priced)
        try:
            await anyio.lowlevel.checkpoint()  # the last moment a cancelled call can stop without sending
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await state.ledger.mark_rejected(record.submission_id, "cancelled before sending")
            raise
        submitted = await _submit_and_record(state, spec, record, prepared.body)
        await state.notifier.tasks_changed(
            [submitted.task_id or ""], list_changed=True, spend=True, principal=state.ledger.principal
        )
        state.watcher.wake(reset_backoff=True)  # CCAPI just answered: no reason to keep backing off
        view = render_submitted(submitted, reused=False, price=priced.price)
        return tool_result(view, view.note or "")

    submit_action.__name__ = spec.tool
    submit_action.__doc__ = spec.description()
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context[AppState, Any])
    asked = inspect.Parameter(  # filled by the resolver (the question, if any), never by the model
        "approval",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[ElicitationResult[Approval], Resolve(_approval_resolver(spec, catalogue))],
    )
    signature = inspect.Signature(
        [*_parameters(spec), _FORCE, asked, context], return_annotation=Annotated[CallToolResult, SubmittedTask]
    )
    submit_action.__signature__ = signature  # pyright: ignore[reportFunctionMemberAccess] - read by inspect.signature
    # get_type_hints (used to find the context parameter) reads __annotations__, not __signature__.
    submit_action.__annotations__ = {
        **{parameter.name: parameter.annotation for parameter in signature.parameters.values()},
        "return": signature.return_annotation,
    }
    return submit_action


async def _submit_and_record(state: AppState, spec: ActionSpec, record: TaskRecord, body: dict[str, Any]) -> TaskRecord:
    """Submit once and record the task id; on any doubt, mark the ledger entry so nothing is resent blindly.

    Shielded from cancellation: once the request may be on its way, the answer must reach the ledger even if
    the client gives up on this call. Bounded by the call deadline: past it, the outcome is unknown.

    Raises:
        ToolError: with what happened and what to check before retrying.
    """
    with anyio.CancelScope(shield=True):
        try:
            try:
                with anyio.fail_after(state.settings.call_deadline):
                    task_id = await state.client.submit(spec.action, body)
            except TimeoutError:
                seconds = state.settings.call_deadline
                message = f"no answer from CCAPI within the call deadline of {seconds:g} s"
                raise ccapi.APITimeoutError(message, request_may_have_been_sent=True) from None
        except (ccapi.APIConnectionError, ccapi.ServerError, ccapi.UnexpectedResponseError) as exc:
            if isinstance(exc, ccapi.APIConnectionError) and not exc.request_may_have_been_sent:
                await state.ledger.mark_rejected(record.submission_id, str(exc))
                raise state.error(exc) from None
            await state.ledger.mark_outcome_unknown(record.submission_id, str(exc))
            logger.warning("submit of %s may have reached CCAPI without a usable answer: %s", spec.action, exc)
            raise ToolError(
                redact(
                    f"The {spec.tool} request may have reached CCAPI, but no clear answer came back ({exc}); it may "
                    "have been accepted and billed. Before retrying, check suno_list_tasks with status "
                    "outcome_unknown and suno_get_balance (or your CCAPI dashboard); a retry with force=true could "
                    "create a second, billed task.",
                    state.settings.api_key,
                )
            ) from None
        except ccapi.CCAPIError as exc:
            await state.ledger.mark_rejected(record.submission_id, str(exc))
            raise state.error(exc, f"for {spec.tool}") from None
        except Exception as exc:  # the money path's last guard: never leave a row 'submitting' unexplained
            logger.exception("submit of %s failed unexpectedly", spec.action)
            await state.ledger.mark_outcome_unknown(record.submission_id, f"unexpected failure: {type(exc).__name__}")
            raise ToolError(
                f"The {spec.tool} request failed unexpectedly ({type(exc).__name__}) and may have reached CCAPI. "
                "Check suno_list_tasks with status outcome_unknown and suno_get_balance before retrying."
            ) from None
        logger.info("CCAPI accepted %s as %s", spec.action, task_id)
        try:
            return await state.ledger.record_task_id(record.submission_id, task_id)
        except (LedgerError, sqlite3.Error) as exc:
            logger.error("CCAPI accepted %s as %s but the ledger could not record it: %s", spec.action, task_id, exc)
            raise ToolError(
                f"CCAPI accepted the request as task {task_id}, but this server could not record it ({exc}); "
                f"keep that id: suno_get_task and suno_wait_for_tasks still work with it. Do not submit again."
            ) from None
    raise AssertionError("unreachable: a shielded scope re-raises what it does not return")  # for the type checker
