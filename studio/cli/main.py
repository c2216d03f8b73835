"""``studio <command> ...``: parsing, dispatch, messages and exit codes (REQ-X01).

:func:`run` is the whole command line: it builds the parser of one sub-command (with the model's
hyperparameters as flags, from the ``catalogue`` handler's schema), parses, runs the command from
:mod:`studio.cli.commands`, and turns every error into a message on stderr and an exit code
(:mod:`studio.cli.exit_codes`). It never imports Qt.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from studio import __version__
from studio.backend.core.errors import StudioError
from studio.cli.exit_codes import BAD_INPUT, FAILED, INTERRUPTED, exit_code_for

__all__ = ["COMMANDS", "INSPECT_TOPICS", "UsageError", "run", "build_parser", "main_parser"]

log = logging.getLogger("studio.cli")
log.addHandler(logging.NullHandler())  # until the log file is set up, nothing goes to stderr

COMMANDS = {
    "train": "Train a model on data, or run a project file (studio train project.studio.json).",
    "distill": "Distil a teacher checkpoint into a smaller student model.",
    "evaluate": "Metrics of a saved model on a split of its data (or other data).",
    "predict": "Predictions of a saved model for new inputs (a CSV, an image, a folder, a NumPy file).",
    "export": "Export a saved model to ONNX or TorchScript, checked against the original.",
    "import-weights": "Put a plain state dict (.safetensors, weights-only .pt/.pth) into a Studio checkpoint.",
    "inspect": "Describe data, a model, a checkpoint, or what the backend offers.",
    "run": "Run a project file with the operation it names (train or distill).",
    "doctor": "What a bug report needs and what is wrong here (versions, GPUs, display, libraries, folders).",
}
INSPECT_TOPICS = {
    "data": "Size, task, classes and splits of a dataset.",
    "model": "Parameters, size, compute and layers of a model on given data.",
    "checkpoint": "What a saved .safetensors checkpoint holds.",
    "catalogue": "The built-in datasets, the models with their presets, and the devices.",
}
EPILOG = ("Exit codes: 0 success, 2 bad input (nothing written), 1 failure during the run, "
          "130 interrupted (Ctrl-C; the state reached is kept). "
          "Scale-out: torchrun --standalone --nproc_per_node N -m studio train ... (see the README).")


class UsageError(StudioError):
    """The command line itself is wrong (unknown sub-command or flag, bad value)."""

    default_code = "usage.invalid"

    def __init__(self, message: str, *, prog: str = "studio", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.prog = prog


class _Exit(Exception):
    """argparse finished the command itself (--help); carries the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse with errors raised (not printed and exited), so :func:`run` owns messages and exit codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    stream: IO[str] | None = None  # where --help goes (run() points it at its stdout)

    def error(self, message: str) -> NoReturn:
        raise UsageError(_friendlier(message, self), prog=self.prog)

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        if message:
            (self.stream or file or sys.stdout).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


    def known_flags(self) -> list[str]:
        return [s for s in self._option_string_actions if s.startswith("--")]


class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions paragraph by paragraph but keeps indented lines (examples) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(_width(), 110))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out = []
        for line in text.splitlines():
            if line.startswith("  ") or not line.strip():
                out.append(indent + line)
            else:
                out.append(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent))
        return "\n".join(out)


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _friendlier(message: str, parser: Parser) -> str:
    if message.startswith("argument ") and "invalid choice:" in message:
        bad = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip().strip("'")
        choices = [c for a in parser._actions if a.choices for c in a.choices]
        close = difflib.get_close_matches(bad, [str(c) for c in choices], n=1)
        if close:
            return f"{message} Did you mean {close[0]!r}?"
    return message


# -- parsers --------------------------------------------------------------------------------------------

def main_parser() -> Parser:
    parser = Parser(prog="studio", description="Studio: train, watch, distil, save and export PyTorch models.\n"
                    "With no arguments the desktop window opens; a sub-command runs the same operations "
                    "headless.", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def build_parser(command: str, ctx: Any, model: Any = None) -> Parser:
    """The parser of one sub-command (``inspect data`` etc. for the inspect topics); ``model`` is the
    :class:`~studio.cli.options.ModelFlags` whose hyperparameters become flags."""
    from studio.cli import commands

    spec = commands.SPECS[command]
    parser = Parser(prog=f"studio {command}", description=spec.description, epilog=EPILOG)
    spec.add_arguments(parser, ctx, model)
    if model is not None:
        model.add_to(parser)
    return parser


# -- running --------------------------------------------------------------------------------------------

def run(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
        registry: Any = None) -> int:
    """Run ``studio <argv>``; returns the exit code."""
    from studio.cli.context import Context

    args = list(sys.argv[1:] if argv is None else argv)
    ctx = Context(stdout=stdout or sys.stdout, stderr=stderr or sys.stderr, registry=registry,
                  json_mode="--json" in args)
    ctx.argv = args
    Parser.stream = ctx.stdout
    try:
        return _run(args, ctx)
    except _Exit as done:
        return done.status
    except UsageError as exc:
        return _report_usage(exc, ctx)
    except StudioError as exc:
        return _report(exc, ctx, exit_code_for(exc))
    except KeyboardInterrupt:
        ctx.err("interrupted.")
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - nothing may end the command without a message
        log.exception("unexpected error in studio %s", " ".join(args))
        return _report(StudioError(f"Something went wrong inside Studio: {type(exc).__name__}: {exc}.",
                                   code="studio.internal", hint=ctx.log_hint()), ctx, FAILED)
    finally:
        Parser.stream = None


def _run(args: list[str], ctx: Any) -> int:
    from studio.cli import commands

    args = [_normalise_flag(a) for a in args]
    if not args or args[0] in ("-h", "--help"):
        main_parser().print_help(ctx.stdout)
        return 0
    if args[0] == "--version":
        print(f"studio {__version__}", file=ctx.stdout)
        return 0
    command, rest = args[0], args[1:]
    if command == "run":
        command, rest = _project_operation(rest), rest
    if command.startswith("-"):
        _unknown_flag(command, main_parser(), None)
    if command not in COMMANDS:
        raise UsageError(f"'{command}' is not a studio command." + _suggest(command, COMMANDS),
                         prog="studio", hint=f"Commands: {', '.join(COMMANDS)}. 'studio --help' explains them.")
    if command == "inspect":
        if not rest or rest[0] in ("-h", "--help"):
            _inspect_parser().print_help(ctx.stdout)
            return 0 if rest else BAD_INPUT
        topic = rest[0]
        if topic not in INSPECT_TOPICS:
            raise UsageError(f"'{topic}' is not something studio inspect describes." +
                             _suggest(topic, INSPECT_TOPICS), prog="studio inspect",
                             hint=f"Topics: {', '.join(INSPECT_TOPICS)}.")
        command, rest = f"inspect {topic}", rest[1:]
    spec = commands.SPECS[command]
    model = spec.prepare(rest, ctx) if spec.prepare else None
    parser = build_parser(command, ctx, model)
    parsed, extras = parser.parse_known_args(rest)
    if extras:
        _unknown_flag(extras[0], parser, ctx if model is not None else None, model)
    ctx.log_start(command, args)
    return spec.run(parsed, ctx, model)


def _project_operation(rest: list[str]) -> str:
    """``studio run PROJECT ...`` is ``studio <the project's operation> PROJECT ...``."""
    from studio.backend.core.project import load_project

    if not rest or rest[0] in ("-h", "--help"):
        raise UsageError("studio run takes a project file: studio run PROJECT.studio.json [flags].",
                         prog="studio run", hint="Flags are those of studio train or studio distill.")
    return load_project(rest[0]).operation


def _inspect_parser() -> Parser:
    parser = Parser(prog="studio inspect", description=COMMANDS["inspect"], epilog=EPILOG)
    sub = parser.add_subparsers(title="topics", metavar="TOPIC")
    for name, text in INSPECT_TOPICS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _normalise_flag(token: str) -> str:
    """``--batch_size=8`` -> ``--batch-size=8`` (flags use dashes; underscores are accepted)."""
    if token.startswith("--") and "_" in token:
        name, sep, value = token.partition("=")
        return name.replace("_", "-") + sep + value
    return token


def _suggest(word: str, options: Sequence[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def _unknown_flag(token: str, parser: Parser, ctx: Any, model: Any = None) -> NoReturn:
    if not token.startswith("-"):
        raise UsageError(f"Unexpected argument {token!r}.", prog=parser.prog,
                         hint=f"'{parser.prog} --help' shows what it takes.")
    flag = token.split("=", 1)[0]
    message = f"'{flag}' is not a flag of {parser.prog}."
    close = difflib.get_close_matches(flag, parser.known_flags(), n=1, cutoff=0.6)
    other = _other_models_with(flag, ctx, model) if ctx is not None else []
    if other:
        names = " and ".join([", ".join(other[:-1]), other[-1]] if len(other) > 1 else other)
        message += f" It is a hyperparameter of {names}, not of {model.name} (choose the model with --model)."
        if close:
            message += f" Or did you mean '{close[0]}'?"
    elif close:
        message += f" Did you mean '{close[0]}'?"
    raise UsageError(message, prog=parser.prog, hint=f"'{parser.prog} --help' lists the flags.")


def _other_models_with(flag: str, ctx: Any, model: Any) -> list[str]:
    name = flag.lstrip("-").replace("-", "_")
    try:
        models = ctx.catalogue().models
    except StudioError:
        return []
    return [str(m["name"]) for m in models if m["name"] != getattr(model, "name", None)
            and any(p["name"] == name for p in m.get("schema", ()))]


def _report_usage(exc: UsageError, ctx: Any) -> int:
    text = exc.message + (f" {exc.hint}" if exc.hint and exc.hint not in exc.message else "")
    ctx.err(f"{exc.prog}: error: {text}")
    if ctx.json_mode:
        ctx.out(json.dumps({"kind": "Error", **exc.to_dict()}))
    return BAD_INPUT


def _report(exc: StudioError, ctx: Any, code: int) -> int:
    hint = f" {exc.hint}" if exc.hint and exc.hint not in exc.message else ""
    ctx.err(f"studio: error [{exc.code}]: {exc.message}{hint}")
    if code == BAD_INPUT:
        ctx.err("Nothing was written.")
    if ctx.json_mode:
        ctx.out(json.dumps({"kind": "Error", **exc.to_dict()}))
    log.warning("exit %s: %s", code, exc, exc_info=exc if code == FAILED else None)
    return code

