"""Helpers shared by the CLI commands: consoles, clean failures, the billing engine."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from flight_fees.lib.core.values import printable

if TYPE_CHECKING:  # not imported at run time: commands without a database stay light
    from sqlalchemy import Engine


class SafeConsole(Console):
    """A Rich console that strips control characters from every string it renders
    (:func:`flight_fees.lib.core.values.printable`): a customer name, a file name or a source's
    error message holding escape sequences is printed as text, it never drives the terminal.
    Rich's own styles are added after this and are not affected."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


err_console = SafeConsole(stderr=True)


def wide_console(**kwargs: object) -> Console:
    """A console for tables: a terminal keeps its width; piped output (CI logs, files) gets
    room for a whole row instead of Rich's default 80 columns."""
    console = SafeConsole(**kwargs)  # type: ignore[arg-type]
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = SafeConsole(width=140, **kwargs)  # type: ignore[arg-type]
    return console


#: exit status of a usage error (bad argument or option) and of a failure
EXIT_USAGE = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """The one error convention of every command: ``error: message`` on stderr and exit
    ``code``: :data:`EXIT_FAILURE` (1, the default) when the command could not do its work,
    :data:`EXIT_USAGE` (2) for bad input on the command line. No traceback."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_day(value: str, option: str) -> dt.date:
    """A UTC day given as ``YYYY-MM-DD`` to ``option`` (a usage error otherwise)."""
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (expected YYYY-MM-DD)", param_hint=f"'{option}'"
        ) from None


def usage_error(exc: Any) -> NoReturn:
    """Report a click exception (usage error: exit 2; other: its own code) the way of
    :func:`fail`, with the command's help hint."""
    import sys

    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    hint = ""
    if ctx is not None and isinstance(exc, typer.BadParameter | click_usage_error()):
        hint = f" (see `{ctx.command_path} --help`)"
    err_console.print(
        f"[red]error:[/red] {escape(message)}{escape(hint)}", highlight=False, soft_wrap=True
    )
    sys.exit(exc.exit_code)


def click_usage_error() -> type:
    try:
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - older typer on the real click
        from click.exceptions import UsageError  # type: ignore[no-redef,assignment]
    return UsageError  # type: ignore[no-any-return]


def open_engine(*, migrated: bool = False) -> Engine:
    """The billing engine. With ``migrated``, make sure the schema is at head: the embedded
    SQLite database is migrated on first use; any other database must be migrated explicitly
    (``flight-fees db upgrade``)."""
    from flight_fees.lib.db import DatabaseError, make_engine
    from flight_fees.lib.db.health import check_schema

    try:
        engine = make_engine()
    except DatabaseError as exc:  # FLIGHT_FEES_DATABASE_URL is not a usable URL
        fail(str(exc), EXIT_USAGE)
    if not migrated:
        return engine
    state = check_schema(engine)
    if state.ok:
        return engine
    if state.error:
        fail(state.error, EXIT_FAILURE)
    if engine.dialect.name == "sqlite":
        from flight_fees.lib.db import upgrade

        upgrade(engine)
        return engine
    fail(f"{state.detail}; run `flight-fees db upgrade`", EXIT_FAILURE)
