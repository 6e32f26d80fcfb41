"""The command-line interface: click commands that parse, call vaegen.api, and report.

This module holds the group, the error mapping and the lazy command registry;
vaegen/cli/options.py holds what commands share, and each command (or small
family) has its own module, imported only when that command runs or is listed.

Errors raised by vaegen become one line `Error: ...` with exit code 1 (2 for
usage errors), naming this command's options where the library named its
Python arguments. Set VAEGEN_DEBUG=1 to let tracebacks through. torch is imported
only inside `train`, `export` and `judge`.
"""

from __future__ import annotations

import os

import click

from vaegen import __version__
from vaegen.errors import ArgumentError, VaegenError

# command name -> the module that defines it (as `command`)
COMMANDS = {
    "train": "vaegen.cli.train",
    "export": "vaegen.cli.export",
    "sample": "vaegen.cli.sample",
    "reconstruct": "vaegen.cli.reconstruct",
    "interpolate": "vaegen.cli.interpolate",
    "encode": "vaegen.cli.latents",
    "decode": "vaegen.cli.latents",
    "traverse": "vaegen.cli.traverse",
    "info": "vaegen.cli.info",
    "score": "vaegen.cli.score",
    "evaluate": "vaegen.cli.evaluate",
    "judge": "vaegen.cli.judge",
    "map": "vaegen.cli.map",
    "serve": "vaegen.cli.serve",
    "fit-prior": "vaegen.cli.fit_prior",
    "cache": "vaegen.cli.cache",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_in_one_line(exc: click.UsageError) -> click.UsageError:
    """click prints a usage error as four lines (usage, hint, blank, error);
    vaegen prints one, `Error: ...`, with the hint at its end."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        return exc  # a bare `vaegen` prints the help, as it should
    where = exc.ctx.command_path if exc.ctx is not None else "vaegen"
    return click.UsageError(f"{_one_line(exc.format_message())} (see '{where} --help')")


class VaegenGroup(click.Group):
    """Builds a command only when it is run or listed, so `vaegen sample`
    does not pay for defining every other command's options at start-up
    (click runs inspect.cleandoc on each help text: ~24 ms for all of them).
    Maps vaegen's errors to one-line messages and exit codes."""

    def list_commands(self, ctx):
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module = importlib.import_module(COMMANDS[cmd_name])
            self.add_command(getattr(module, cmd_name.replace("-", "_")), cmd_name)
        return self.commands.get(cmd_name)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _usage_in_one_line(exc) from None

    def invoke(self, ctx):
        debug = bool(os.environ.get("VAEGEN_DEBUG"))
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_in_one_line(exc) from None
        except ArgumentError as exc:
            if debug:
                raise
            raise _usage_in_one_line(click.UsageError(_in_cli_terms(exc, ctx), _innermost(ctx))) from None
        except VaegenError as exc:
            if debug:
                raise
            raise click.ClickException(_in_cli_terms(exc, ctx)) from None
        except MemoryError:
            if debug:
                raise
            raise click.ClickException("Out of memory; ask for less (a smaller -n, --steps or --limit).") from None


def _in_cli_terms(exc: VaegenError, ctx: click.Context) -> str:
    """The library's message in one line, naming the running command's option
    where it names the Python argument (`exc.argument`): provider="cuda"
    becomes --provider cuda, port=0 becomes --port 0, and a flag's
    name=True becomes the flag alone. An argument the command has no option
    for is left as the library wrote it."""
    import re

    text = _one_line(str(exc))
    argument = getattr(exc, "argument", None)
    sub = getattr(ctx, "invoked_subcommand", None)
    command = ctx.command.get_command(ctx, sub) if sub is not None else None
    if not argument or command is None:
        return text
    flag = "--" + argument.replace("_", "-")
    param = next((p for p in command.params if flag in getattr(p, "opts", ())), None)
    if param is None:
        return text

    def option(match: re.Match) -> str:
        return flag if getattr(param, "is_flag", False) else f"{flag} {match.group(2)}"

    return re.sub(rf"\b{re.escape(argument)}=([\"']?)([^\"'\s;,)]*)\1", option, text)


def _innermost(ctx: click.Context) -> click.Context | None:
    """The running subcommand's context (for the '--help' hint), if any."""
    sub = getattr(ctx, "invoked_subcommand", None)
    return None if sub is None else click.Context(ctx.command.get_command(ctx, sub), parent=ctx, info_name=sub)


@click.group(cls=VaegenGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="vaegen")
def cli():
    """Train, ship and use variational autoencoders from a terminal.

    `vaegen train` trains a VAE in PyTorch and exports it to ONNX; every
    other command runs the ONNX files with ONNX Runtime, without torch.
    From Python: `import vaegen; vaegen.load_model().sample(64)`.

    \b
    Example:
        vaegen sample -n 64 -o grid.png
    """


def main() -> None:
    cli(prog_name="vaegen")
