"""The `bench` command line. Subcommands load lazily so `bench --help` stays fast."""

from __future__ import annotations

import importlib

import click

# Command name -> "module:attribute". Each module owns its command (or command group).
COMMANDS: dict[str, str] = {
    "report": "bench.cli.report:report",
    "data": "bench.cli.data:data",
    **{name: f"bench.cli.run:{name}" for name in ("run", "sweep", "rescore", "ls")},
    "table": "bench.cli.report:table",
    "check": "bench.cli.report:check_command",
    "eval": "bench.cli.eval:eval_command",
    "store": "bench.cli.store:store",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup)
@click.version_option(package_name="bench")
def main() -> None:
    """bench: how well does a tracker do when humans label only a few frames per track?"""
