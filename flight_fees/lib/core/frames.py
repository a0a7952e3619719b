"""Typed access to pandas frames whose column names are strings (every frame of the domain)."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict("records")``: one dict per row, keyed by column name.

    pandas-stubs type the keys as ``Hashable`` (a column may be named by any hashable); the
    frames of this package are named by strings, which is what this says to the type checker.
    """
    return cast("list[dict[str, Any]]", frame.to_dict("records"))
