"""The `bench` command line. Subcommands load lazily so `bench --help` stays fast."""

from __future__ import annotations

import traceback

import click

from bench.registry import Registry


def _check_command(obj: object) -> None:
    if not isinstance(obj, click.Command):
        raise TypeError(f"{obj!r} is not a click command")


# Command name -> "module:attribute". Each module owns its command (or command group); a package may add
# one through the "bench.commands" entry-point group.
COMMANDS: Registry[click.Command] = Registry("command", {
    "report": "bench.cli.report:report",
    "data": "bench.cli.data:data",
    **{name: f"bench.cli.run:{name}" for name in ("run", "sweep", "rescore", "ls")},
    "table": "bench.cli.report:table",
    "check": "bench.cli.report:check_command",
    "eval": "bench.cli.eval:eval_command",
    "store": "bench.cli.store:store",
}, group="bench.commands", check=_check_command)


EXIT_CODES_HELP = """\b
Exit codes (every command):
  0  ok
  1  regression (bench check: a metric moved beyond its tolerance)
  2  bad input (unknown name, bad value, missing or unreadable file) or failed runs
  3  nothing to do (no runs, nothing matched)"""


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs.

    Exit codes mean one thing everywhere: a plain ``click.ClickException`` (exit 1 in click) is bad
    input here, so it exits 2; 1 is kept for a regression found by ``bench check``.
    """

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            if error.exit_code == 1:
                # click declares exit_code per class; this one instance is bad input (exit 2), not a regression.
                error.exit_code = 2  # type: ignore[misc]
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception:
            # A crash is a bug in bench, never a verdict: Python's exit 1 would read as a regression to
            # whoever gates on `bench check`. The traceback is printed; the exit code is 2 (failed).
            traceback.print_exc()
            click.echo("error: bench failed with the exception above (a bug: please report it)", err=True)
            raise SystemExit(2) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return COMMANDS.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        # None: click says "No such command" itself, with its own close-name hint.
        return COMMANDS.get(name) if name in COMMANDS else None


@click.group(cls=LazyGroup, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="bench")
def main() -> None:
    """bench: how well does a tracker do when humans label only a few frames per track?"""
