"""The distribution: it builds without packaging warnings and ships every module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_builds_quietly_and_ships_the_migrations(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), "."],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # setuptools' warnings (a directory of modules left out of `packages`, say) reach the
    # first `make install`; pip's own notes about its index locations are not ours.
    ours = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert ours == [], "\n".join(ours)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(PROJECT_DIR).as_posix()
        for path in PROJECT_DIR.glob("gateway/migrations/**/*.py")
    }
    assert shipped and shipped <= names
    assert "gateway/migrations/script.py.mako" in names
