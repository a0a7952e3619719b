"""Shared storage addressed by URL: run frames, maps, documents and processing logs.

One setting, ``FLIGHT_FEES_STORAGE_URL`` (:func:`flight_fees.lib.core.settings.storage_url`),
names the root of everything a step on another machine reads from an earlier step:

- unset (the default), a local path or a ``file://`` URL: a local folder, handled by plain
  :mod:`pathlib` exactly as before (unset = the home, ``FLIGHT_FEES_HOME``);
- any other fsspec URL, e.g. ``s3://bucket/prefix`` in production: a
  :class:`upath.UPath` over that filesystem (s3fs for ``s3://``).

Both kinds of path offer the same pathlib API (``/``, ``exists``, ``is_dir``, ``glob``,
``read_bytes``, ``read_text``, ``stat``, ``unlink``), so the work store, the map cache, the
document writer and the processing logs use them alike. What differs is here:

- **atomic writes** (:func:`write_bytes_atomic`, :func:`write_text_atomic`,
  :func:`write_parquet_atomic`): locally a temp file in the same folder and a rename; on an
  object store one PUT, which makes the object appear whole or not at all;
- **Parquet reads** (:func:`read_parquet`, :func:`read_table`, :func:`parquet_rows`): pyarrow
  opens local files itself and remote ones through the fsspec filesystem;
- **folders**: an object store has none; :func:`remove_empty_dirs` only acts locally.

Credentials and endpoint come from the backend's usual environment (S3: ``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` or the pod's role, ``AWS_ENDPOINT_URL_S3`` for an S3-compatible
store). Listings are never cached (``use_listings_cache=False``): another process may have
written since the last one.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from typing_extensions import TypeIs
    from upath import UPath

#: A local :class:`~pathlib.Path` or a :class:`upath.UPath` of a remote filesystem.
StoragePath: TypeAlias = "Path | UPath"

__all__ = [
    "StoragePath",
    "confined",
    "is_local",
    "parquet_rows",
    "read_parquet",
    "read_table",
    "remove_empty_dirs",
    "storage_path",
    "write_bytes_atomic",
    "write_parquet_atomic",
    "write_text_atomic",
]

_LOCAL_SCHEMES = ("file", "local")


def storage_path(location: str | os.PathLike[str] | StoragePath) -> StoragePath:
    """The path named by ``location``: a local path or ``file://`` URL gives a plain
    :class:`~pathlib.Path` (resolved), any other URL a :class:`upath.UPath`; a path object is
    returned as it is."""
    if isinstance(location, Path):
        return location
    if hasattr(location, "protocol"):  # a UPath (upath is imported only once one exists)
        from upath import UPath

        if isinstance(location, UPath):
            return location
    text = os.fspath(location)
    scheme, sep, _ = text.partition("://")
    if not sep:
        return Path(text).expanduser().resolve()
    if scheme.lower() in _LOCAL_SCHEMES:
        return Path(unquote(urlsplit(text).path)).resolve()
    from upath import UPath

    return UPath(text, use_listings_cache=False)


def is_local(path: StoragePath) -> TypeIs[Path]:
    """Whether ``path`` is a local :class:`~pathlib.Path` (not an fsspec UPath)."""
    return isinstance(path, Path)


def confined(root: StoragePath, *parts: str) -> StoragePath:
    """``root/part/...``, or :class:`ValueError` when it would leave ``root``. Locally the
    result is resolved (symlinks followed) and must stay below the resolved root; on an object
    store there are no links, so each part must be a plain name (no separator, not ``.`` or
    ``..``) and the joined key must start with the root's."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise ValueError(f"refused path component {part[:80]!r}")
    if is_local(root):
        base = Path(root).resolve()
        target = base.joinpath(*parts).resolve()
        if not target.is_relative_to(base) or target == base:
            raise ValueError("path outside its root")
        return target
    remote = root.joinpath(*parts)
    if not str(remote).startswith(str(root).rstrip("/") + "/"):
        raise ValueError("path outside its root")
    return remote


# --------------------------------------------------------------------------------------------
# writes
# --------------------------------------------------------------------------------------------


def _replace_locally(target: Path, write: Any) -> None:
    """``write(tmp_path)`` into a temp file beside ``target``, then rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(target: StoragePath, data: bytes) -> StoragePath:
    """Write ``data`` at ``target`` so that no reader ever sees a partial file."""
    if is_local(target):
        _replace_locally(target, lambda tmp: Path(tmp).write_bytes(data))
    else:
        target.write_bytes(data)  # one PUT
    return target


def write_text_atomic(target: StoragePath, text: str, encoding: str = "utf-8") -> StoragePath:
    return write_bytes_atomic(target, text.encode(encoding))


def write_parquet_atomic(target: StoragePath, frame: pd.DataFrame) -> StoragePath:
    """Write ``frame`` as Parquet at ``target``, atomically (locally pyarrow writes the temp
    file directly, as before; remotely the file is built in memory and PUT once)."""
    if is_local(target):
        _replace_locally(target, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        target.write_bytes(buffer.getvalue())
    return target


# --------------------------------------------------------------------------------------------
# reads
# --------------------------------------------------------------------------------------------


def read_parquet(path: StoragePath, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_parquet`` of a local or remote file."""
    import pandas as pd

    if is_local(path):
        return pd.read_parquet(path, **kwargs)
    return pd.read_parquet(path.path, filesystem=path.fs, **kwargs)


def read_table(path: StoragePath, **kwargs: Any) -> pa.Table:
    """``pyarrow.parquet.read_table`` of a local or remote file (``filters`` etc. passed on)."""
    import pyarrow.parquet as pq

    if is_local(path):
        return pq.read_table(path, **kwargs)
    return pq.read_table(path.path, filesystem=path.fs, **kwargs)


def parquet_rows(path: StoragePath) -> int:
    """Rows of a Parquet file, from its footer alone."""
    import pyarrow.parquet as pq

    if is_local(path):
        return pq.read_metadata(path).num_rows
    with path.open("rb") as handle:
        return pq.read_metadata(handle).num_rows


def remove_empty_dirs(root: StoragePath) -> None:
    """Remove the empty folders below ``root``, deepest first (local only: an object store
    has no folders, a prefix disappears with its last object)."""
    if not is_local(root) or not root.exists():
        return
    for folder in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
