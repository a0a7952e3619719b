"""Registers the commands that live in their own modules on the main app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
