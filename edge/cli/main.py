"""The ``edgewatch`` command: the top-level parser, logging, error reporting and the command modules.

Each module in ``_COMMANDS`` declares its own subcommands (``add_parser``) and names the function
that runs each one; that function's module is imported only when its command runs, and declaring
is argparse only, so ``edgewatch --help`` never imports onnxruntime, let alone torch.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 141 (128 + SIGPIPE, as for other
Unix tools) when the reader of the output went away (``edgewatch ... --json | head``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from edge.cli import (
    alerts,
    capture,
    check,
    demo,
    evaluate,
    export_args,
    fleet,
    info,
    labels,
    service,
    vibration,
    vision,
    workstation,
)
from edge.errors import EdgewatchError, UsageError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
_SIGPIPE_EXIT = 141

# in the order ``edgewatch --help`` lists their commands
_COMMANDS = (export_args, vision, capture, check, vibration, service, alerts, fleet, demo, evaluate, workstation,
             info, labels)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError (exit 2) instead of printing itself."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edgewatch", description="Watch machines with a camera and sensors on a Raspberry Pi or Jetson."
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for module in _COMMANDS:
        module.add_parser(sub, _Parser)
    return parser


def _resolve(target: str) -> Handler:
    """The function a "module:function" target names, its module imported now."""
    module_name, function_name = target.split(":")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    from edge.logs import setup_logging

    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.log_level)
        code = _resolve(args.handler)(args)
        sys.stdout.flush()  # a closed pipe must fail here, not in the interpreter's exit
        return code
    except EdgewatchError as exc:
        print(f"edgewatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Python ignores SIGPIPE, so a reader that stopped early (head) shows up as this error;
        # stop quietly like other tools, and point stdout at /dev/null so the exit flush is quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _SIGPIPE_EXIT
