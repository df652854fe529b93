"""Entry point of the amr CLI's resource commands (group, redisenterprise, account, monitor) and az-setup.

``main(argv)`` parses the arguments, runs one command against the amr API over HTTPS and prints its
result as az would. It never lets a traceback reach the user: every failure becomes ``ERROR: ...``
on stderr with exit code 1 (2 for argument errors). ``--debug`` adds HTTP logs and tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Any

from amr.cli import commands_account, commands_az, commands_cache, commands_group, commands_monitor
from amr.cli.common import add_output_args
from amr.cli.context import Context
from amr.cli.output import render
from amr.errors import AmrError, ArmError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amr",
        description="amr: a self-hosted managed Redis service with Azure Managed Redis' management API.",
    )
    add_output_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    commands_group.register(sub)
    commands_cache.register(sub)
    commands_account.register(sub)
    commands_monitor.register(sub)
    commands_az.register(sub)
    return parser


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Logging:
    """Route amr's and httpx's logs to stderr for --debug/--verbose, and undo it afterwards."""

    def __init__(self, stream: Any, level: int | None) -> None:
        self.stream, self.level = stream, level
        self.handler: logging.Handler | None = None
        self.saved: list[tuple[logging.Logger, int]] = []

    def __enter__(self) -> _Logging:
        if self.level is None:
            return self
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
        for name in ("amr", "httpx"):
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level))
            logger.setLevel(self.level)
            logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level in self.saved:
            logger.setLevel(level)
            if self.handler is not None:
                logger.removeHandler(self.handler)


def main(argv: list[str] | None = None, *, context: Context | None = None) -> int:
    """Run one CLI command; return its exit code.

    ``context`` is the seam for tests and embedding: pass a ``Context`` with a ``transport``
    (e.g. ``httpx.MockTransport``), ``settings_factory``, ``sleep`` and streams.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    ctx = context or Context()
    debug = "--debug" in argv
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
            return _exit_code(e)
        if getattr(args, "func", None) is None:
            parser.print_help(ctx.stdout)
            return 0
        ctx.quiet = bool(getattr(args, "only_show_errors", False))
        level = logging.DEBUG if getattr(args, "debug", False) else None
        if level is None and getattr(args, "verbose", False):
            level = logging.INFO
        with _Logging(ctx.stderr, level):
            try:
                result = args.func(ctx, args)
            except argparse.ArgumentTypeError as e:
                try:
                    args._parser.error(str(e))
                except SystemExit as exit_:
                    return _exit_code(exit_)
        fmt = getattr(args, "output", "json")
        text = render(result, fmt, getattr(args, "query", None), color=_isatty(ctx.stdout))
        if text:
            ctx.stdout.write(text)
            ctx.stdout.flush()
        return 0
    except ArmError as e:
        _error(ctx, f"({e.code}) {e.message}", debug)
        return 1
    except AmrError as e:
        _error(ctx, str(e), debug)
        return 1
    except KeyboardInterrupt:
        ctx.stderr.write("\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the last line of defence: never show a traceback unless --debug
        _error(ctx, f"unexpected error: {type(e).__name__}: {e}. Run again with --debug for details.", debug)
        return 1
    finally:
        ctx.close()


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    return 1


def _error(ctx: Context, message: str, debug: bool) -> None:
    try:
        if debug:
            ctx.stderr.write(traceback.format_exc())
        ctx.stderr.write(f"ERROR: {message}\n")
        ctx.stderr.flush()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
