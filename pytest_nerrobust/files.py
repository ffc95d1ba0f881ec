"""File modes for what the engine writes through private temporary files."""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """Return the process umask without changing it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_default_mode(path: Path) -> None:
    """Give ``path``, and every file and folder below it, the mode a new file or folder gets under the umask.

    Temporary files are created private (mode 0600), so a report or a shared model copy written through
    one would otherwise be unreadable to other users of the same directory.
    """
    mask = current_umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
