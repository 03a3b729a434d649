"""Workflow prompts: the common multi-step jobs, spelled out for the assistant."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.prompts.base import Message, Prompt, PromptArgument
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, GetPromptRequestParams, GetPromptResult, InputRequiredResult
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, validate_call
from pydantic.fields import FieldInfo

__all__ = ["register_prompts"]

_WAIT = (
    "After each submit, call suno_wait_for_tasks with the task id (call it again while tasks are still running; "
    "never resubmit a slow task)."
)


_Fn = TypeVar("_Fn", bound=Callable[..., str])


class _LazyPrompt(Prompt):
    """A prompt whose argument validation (pydantic's `validate_call`) is built on its first use: building it for
    every prompt at start-up cost more than the rest of the server's set-up."""

    model_config = ConfigDict(defer_build=True)  # made with model_construct: no validator is ever built

    _validated: bool = PrivateAttr(default=False)

    async def render(
        self, arguments: dict[str, Any] | None, context: Context[Any, Any]
    ) -> list[Message] | InputRequiredResult:
        if not self._validated:
            self.fn, self._validated = validate_call(self.fn), True
        return await super().render(arguments, context)


def _arguments(function: Callable[..., Any]) -> list[PromptArgument]:
    """The prompt's arguments from its signature: names, descriptions (from `Field`), and which are required."""
    arguments: list[PromptArgument] = []
    for parameter in inspect.signature(function, eval_str=True).parameters.values():
        metadata: tuple[Any, ...] = getattr(parameter.annotation, "__metadata__", ())
        description = next((item.description for item in metadata if isinstance(item, FieldInfo)), None)
        required = parameter.default is inspect.Parameter.empty
        arguments.append(PromptArgument(name=parameter.name, description=description, required=required))
    return arguments


def prompt(server: MCPServer[Any], title: str) -> Callable[[_Fn], _Fn]:
    """Register a function as the prompt named after it (like `@server.prompt`, its validation built lazily)."""

    def register(function: _Fn) -> _Fn:
        server.add_prompt(
            _LazyPrompt.model_construct(
                name=function.__name__,
                title=title,
                description=inspect.cleandoc(function.__doc__ or ""),
                arguments=_arguments(function),
                fn=function,
                context_kwarg=None,
            )
        )
        return function

    return register


def register_prompts(server: MCPServer[Any]) -> None:
    """Add the compose, lengthen, remix and release-pack prompts, and a `prompts/get` that answers bad requests
    with invalid params (-32602) and a clear message; MCPServer's own answers them with code 0 and logs a
    traceback."""

    @prompt(server, "Compose a song")
    def compose_song(
        topic: Annotated[str, Field(description="What the song is about.")],
        style: Annotated[str, Field(description="Genre and mood, e.g. 'indie pop, dreamy'.")] = "",
        instrumental: Annotated[Literal["yes", "no"], Field(description="yes for no vocals.")] = "no",
    ) -> str:
        """Write and produce a song about a topic, then report titles, lengths and links."""
        if instrumental == "yes":
            plan = (
                f"Call suno_generate_music with instrumental=true, a description of an instrumental piece about "
                f"{topic!r}, and tags {style!r}."
            )
        else:
            plan = (
                f"First draft lyrics about {topic!r} with suno_generate_lyrics and show them to me. When I approve "
                f"(or if I said to go ahead), call suno_generate_music with those lyrics, a fitting title, and tags "
                f"{style or 'that suit the topic'!r}."
            )
        return (
            f"Make a song about {topic}.\n{plan}\n{_WAIT}\nThen tell me each clip's title, duration and audio "
            "link, and offer to download, extend or export it."
        )

    @prompt(server, "Lengthen a song")
    def lengthen_song(
        clip_id: Annotated[str, Field(description="The clip to lengthen.")],
        continue_at: Annotated[str, Field(description="Second to continue from (default: near the end).")] = "",
        lyrics: Annotated[str, Field(description="Lyrics for the new part (optional).")] = "",
    ) -> str:
        """Extend a clip, then join the extension into one full song."""
        at = f"continue_at={continue_at}" if continue_at else "continue_at a few seconds before the clip's end"
        words = f" and these lyrics: {lyrics!r}" if lyrics else ""
        return (
            f"Lengthen clip {clip_id}. Read suno://clips/{clip_id} (or suno_list_tasks) for its duration. Call "
            f"suno_extend_music with clip_id={clip_id}, {at}{words}. {_WAIT} The extension clips hold only the new "
            "part: call suno_concatenate_music with the extension clip_id I prefer (or the first one) to get the "
            "whole song, wait again, and give me the full song's link."
        )

    @prompt(server, "Remix a song")
    def remix_song(
        clip_id: Annotated[str, Field(description="The clip to remix.")],
        style: Annotated[str, Field(description="The new style, e.g. 'acoustic folk'.")],
    ) -> str:
        """Make a cover in a new style, split stems, and optionally re-sing it."""
        return (
            f"Remix clip {clip_id} into {style!r}. 1) suno_create_cover with clip_id={clip_id} and tags {style!r}. "
            f"2) suno_extract_stems on the original clip to get vocals and instrumental. {_WAIT} 3) Offer "
            "suno_add_vocals on the instrumental stem with new lyrics if I want a new vocal. Report every result "
            "with links."
        )

    @prompt(server, "Prepare a release pack")
    def release_pack(clip_id: Annotated[str, Field(description="The finished clip to release.")]) -> str:
        """Export WAV, MIDI, time-aligned lyrics and a video for a clip, and save them locally."""
        return (
            f"Prepare a release pack for clip {clip_id}: submit suno_export_wav, suno_generate_midi, "
            f"suno_get_aligned_lyrics and suno_generate_music_video for clip_id={clip_id} (four separately billed "
            f"tasks; tell me before you start). {_WAIT} Then suno_download clip_id={clip_id} kind=release (one "
            "folder: tagged audio, cover, lyrics, sidecar, .lrc and every export) and list the saved files."
        )

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: GetPromptRequestParams
    ) -> GetPromptResult | InputRequiredResult:
        prompts = {prompt.name: prompt for prompt in await server.list_prompts()}
        prompt = prompts.get(params.name)
        if prompt is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {params.name!r}: the prompts are {', '.join(prompts)}")
        given = params.arguments or {}
        declared = prompt.arguments or []
        missing = [argument.name for argument in declared if argument.required and argument.name not in given]
        unknown = sorted(set(given) - {argument.name for argument in declared})
        if missing or unknown:
            problems = [f"missing required argument(s) {', '.join(missing)}"] if missing else []
            problems += [f"unknown argument(s) {', '.join(unknown)}"] if unknown else []
            accepted = ", ".join(argument.name for argument in declared)
            raise MCPError(INVALID_PARAMS, f"Prompt {params.name}: {'; '.join(problems)} (it takes {accepted})")
        try:
            return await server.get_prompt(params.name, given)
        except ValueError as exc:  # an argument of the wrong value: the ValidationError is down the cause chain
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, ValidationError):
                cause = cause.__cause__
            if cause is None:
                raise
            problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in cause.errors())
            raise MCPError(INVALID_PARAMS, f"Prompt {params.name}: {problems}") from None

    server._lowlevel_server.add_request_handler("prompts/get", GetPromptRequestParams, get_prompt)  # pyright: ignore[reportPrivateUsage] - no public hook yet
