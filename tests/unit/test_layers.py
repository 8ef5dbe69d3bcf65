"""The layers hold: api -> service -> (engine | store), protocol under all (the contracts
are in pyproject.toml, checked by import-linter)."""

from __future__ import annotations

import os
import shutil
import subprocess


def test_no_layer_reaches_upward_or_past_its_neighbour():
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra"
    result = subprocess.run([lint, "--no-cache"], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
