"""The `ccapi-suno-mcp` command: run the server (stdio or HTTP), the sandbox alone, or a check-up."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ccapi_suno_mcp import __version__

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from ccapi_suno_mcp.settings import Settings
    from ccapi_suno_mcp.state import AppState

__all__ = ["main"]

logger = logging.getLogger("ccapi_suno_mcp")


class _RedactingFilter(logging.Filter):
    """Masks the API key in every log record, whatever logged it."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            from ccapi_suno_mcp.errors import redact

            message = original = record.getMessage()
            for secret in self._secrets:
                message = redact(message, secret)
            if message != original:
                record.msg, record.args = message, None
        return True


_TOKEN_FILE = "http-token"


def _generated_token(home: Path) -> str:
    """The HTTP token kept in a file only the user can read (never in the logs), made once and then reused.

    Reusing it keeps configured clients working across restarts. The file is written to a private temporary
    file first and renamed into place, so a planted symlink or a wider-permission file is never written through.
    """
    import secrets
    import tempfile

    path = home / _TOKEN_FILE
    if path.is_file() and not path.is_symlink() and (path.stat().st_mode & 0o077) == 0:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token
    token = secrets.token_urlsafe(24)
    home.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".http-token-", dir=home)  # created 0600
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    os.replace(temporary, path)
    return token


def _warn_if_others_can_read(path: Path | None) -> None:
    """Warn, as ssh does of a key file, when a secret file can be read by other users of the machine.

    A warning, not a refusal: secret volumes (Kubernetes, Docker) are often mounted 0644 inside a container that
    has no other users, and refusing would stop a working deployment.
    """
    if path is None:
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # settings already read it; a file gone since is not this check's business
    if mode & 0o077:
        logger.warning(
            "%s holds bearer tokens but other users can read it (mode %s): anyone on this machine could spend your "
            "CCAPI balance with them. Run: chmod 600 %s",
            path,
            oct(mode & 0o777)[2:].zfill(4),
            path,
        )


def _check_home(settings: Settings, *, needs_it: bool) -> None:
    """Say in one line when CCAPI_SUNO_HOME cannot be written. Exit (2) when start-up itself must write there
    (the sandbox's state, the HTTP token); otherwise serve, and each call that needs the ledger says the same."""
    from ccapi_suno_mcp._disk import unwritable_message, unwritable_reason

    reason = unwritable_reason(settings.home)
    if reason is None:
        return
    message = unwritable_message(settings.home, reason, "CCAPI_SUNO_HOME")
    if needs_it:
        logger.error("cannot start: %s", message)
        raise SystemExit(2)
    shared = settings.ledger_url is not None
    logger.error(
        "%s%s", message, "" if shared else " The task ledger lives there: until then, calls that need it say so."
    )


def _configure_logging(level: str, *secrets: str | None) -> None:
    handler = logging.StreamHandler(sys.stderr)  # stdout is the MCP protocol channel
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(*secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        # One line per HTTP request (the watcher polls every few seconds) says nothing our own lines do not.
        logging.getLogger("httpx2").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccapi-suno-mcp",
        description="MCP server for CCAPI's Suno API. With no command it serves MCP over stdio.",
        epilog="Environment: CCAPI_API_KEY (secret), CCAPI_BASE_URL, CCAPI_SUNO_HOME, CCAPI_SUNO_DOWNLOAD_DIR, "
        "CCAPI_SUNO_ARTIST, CCAPI_SUNO_TOOLSETS, CCAPI_SUNO_ACTIONS, CCAPI_SUNO_HTTP_TOKEN (secret), "
        "CCAPI_SUNO_DEADLINE_SECONDS, CCAPI_SUNO_LEDGER_URL, CCAPI_SUNO_HTTP_TOKENS_FILE, "
        "CCAPI_SUNO_OAUTH_* (sign-in). "
        "See docs/reference/environment.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--sandbox", action="store_true", help="wire the server to a built-in CCAPI emulator: no key, no network"
    )
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="MCP transport (stdio)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transport: address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP transport: port (8765)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sandbox = commands.add_parser("sandbox", help="serve the CCAPI emulator alone on 127.0.0.1")
    sandbox.add_argument("--port", type=int, required=True, dest="sandbox_port", help="port to listen on")
    sandbox.add_argument("--key", default=None, help="accept only this bearer key (default: any non-empty key)")
    sandbox.add_argument("--speed", type=float, default=1.0, help="finish tasks this many times sooner (1.0)")
    commands.add_parser("doctor", help="check the key, CCAPI, the ledger and download folders (free calls only)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `ccapi-suno-mcp` console script."""
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        _configure_logging(args.log_level, None)
        from ccapi_suno_mcp.sandbox import run_sandbox

        run_sandbox(port=args.sandbox_port, api_key=args.key, speed=args.speed)
        return

    if args.command == "doctor":
        _configure_logging("WARNING", None)
        import anyio

        from ccapi_suno_mcp.doctor import run_doctor

        raise SystemExit(anyio.run(lambda: run_doctor(out=sys.stdout)))

    with _loading():
        settings, server = _prepare(args)
    if args.transport == "stdio":
        if sys.stdin.isatty():  # a person started it, not an MCP client: say what it is waiting for
            from ccapi_suno_mcp._terminal import terminal_hint

            sys.stderr.write(terminal_hint(sandbox=settings.sandbox) + "\n")  # stdout is the protocol's
            sys.stderr.flush()
        import anyio

        from ccapi_suno_mcp.stdio import serve_stdio

        anyio.run(serve_stdio, server)
        return
    _serve_http(args, settings, server)


@contextmanager
def _loading() -> Generator[None]:
    """Pause Python's cyclic garbage collector while the server loads, then freeze what was loaded.

    Loading builds the SDK's ~550 pydantic models and ours: some 130,000 long-lived objects. With the collector
    on, it walks that growing heap about 200 times before the first answer, some 8% of start-up. Loading makes
    almost no cyclic garbage (about a thousand objects), so nothing is lost by not collecting it; frozen, the
    loaded objects are never walked again, and new ones are collected as usual.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
    gc.freeze()  # only after a load that succeeded (an error exits, or is a test's)


def _prepare(args: argparse.Namespace) -> tuple[Settings, MCPServer[AppState]]:
    """The settings and the server they describe, with every start-up warning logged.

    Raises:
        SystemExit: for settings that cannot run (exit code 2, one line in the log).
    """
    from ccapi_suno_mcp.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(sandbox=args.sandbox)
    except SettingsError as exc:
        _configure_logging(args.log_level, None)
        logger.error("configuration error: %s", exc)
        raise SystemExit(2) from None
    _configure_logging(args.log_level, *settings.secrets)
    _warn_if_others_can_read(settings.tokens_file)
    if (settings.api_key_placeholder or settings.api_key_problem) is not None and not settings.sandbox:
        from ccapi_suno_mcp.errors import no_key_message

        logger.warning("%s", no_key_message(settings.api_key_placeholder, settings.api_key_problem))
    elif settings.api_key is None and not settings.sandbox:
        logger.warning(
            "CCAPI_API_KEY is not set: the server starts and lists its tools, but every call that reaches CCAPI "
            "will explain how to set it. Set CCAPI_API_KEY=sk-... in the server's environment, or run with "
            "--sandbox to try everything offline."
        )

    _check_home(settings, needs_it=settings.sandbox or (args.transport == "http" and not settings.http_tokens))

    from ccapi_suno_mcp.app import create_server

    return settings, create_server(settings)


def _serve_http(args: argparse.Namespace, settings: Settings, server: MCPServer[AppState]) -> None:
    from ccapi_suno_mcp.settings import DEFAULT_PRINCIPAL, LOOPBACK_HOSTS

    tokens = settings.http_tokens
    if settings.oauth is not None:
        import anyio

        from ccapi_suno_mcp.http import serve_http

        anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=tokens, oauth=settings.oauth))
        return
    if not tokens and args.host not in LOOPBACK_HOSTS:
        logger.error(
            "refusing to serve MCP over HTTP on %s without CCAPI_SUNO_HTTP_TOKEN: anyone who can reach it could "
            "spend your CCAPI balance. Set CCAPI_SUNO_HTTP_TOKEN (or CCAPI_SUNO_HTTP_TOKENS_FILE), or bind "
            "127.0.0.1 (the default).",
            args.host,
        )
        raise SystemExit(2)
    if not tokens:
        tokens = {_generated_token(settings.home): DEFAULT_PRINCIPAL}
        logger.warning(
            "CCAPI_SUNO_HTTP_TOKEN is not set: clients must send the token written to %s "
            "(Authorization: Bearer <token>); set CCAPI_SUNO_HTTP_TOKEN to choose your own.",
            settings.home / _TOKEN_FILE,
        )
    import anyio

    from ccapi_suno_mcp.http import serve_http

    anyio.run(lambda: serve_http(server, host=args.host, port=args.port, token=tokens))
