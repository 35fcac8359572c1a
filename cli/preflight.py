"""Checks made before a command starts: folders it must write to, files it must read; each problem is one line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def writable_folder_problem(folder: Path, setting: str) -> str | None:
    """Why ``folder`` cannot take files (created if missing), or ``None``: checked by writing and deleting one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(descriptor)
        os.unlink(name)
    except OSError as error:
        return (f"{setting}={folder} is not a folder this user can write to ({type(error).__name__}: "
                f"{error.strerror or error}): make it writable, or set {setting} to another folder.")
    return None


def data_file_problems(paths: list[Path]) -> list[str]:
    problems = []
    for path in paths:
        if path.is_dir():
            problems.append(f"--data {path} is a folder, not a kline file: name the files in it, e.g. "
                            f"--data {path}/*.csv (one file per symbol).")
        elif not path.is_file():
            problems.append(f"data file not found: {path} (check the path; the folder is {Path.cwd()}).")
    return problems
