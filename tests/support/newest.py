"""The newest releases of the official SDKs, installed apart from the suite's pins (openai
1.106 on PyPI, openai 6 on npm) and cached between runs: the issues ask for both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

NEWEST_PYTHON_SDK = "openai==3.63.0"
NEWEST_AGENTS_SDK = "openai-agents==0.25.0"  # with the openai it needs (3.x)
NEWEST_NODE_SDK = "openai@7.60.0"
ZOD = "zod@3.25.76"  # as tests/node/package.json pins it
NEWEST_NODE_AGENTS = ("@openai/agents@0.20.0", "zod@4.6.7")  # it asks for zod 4 (and openai 7)
_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "chatport", "sdk")
_NODE_SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "node")


def newest_python_sdk(requirement: str = NEWEST_PYTHON_SDK) -> str:
    """A target directory holding the newest openai-python (or ``requirement`` with what it
    needs), to put first on PYTHONPATH."""
    target = os.path.join(_CACHE, requirement.replace("==", "-"))
    if not os.path.isdir(os.path.join(target, "openai")):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", target, requirement],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return target


def newest_node_sdk(packages: tuple[str, ...] = (NEWEST_NODE_SDK, ZOD)) -> str:
    """A directory whose node_modules hold the newest openai npm package and zod (or
    ``packages``): a script copied there imports them."""
    target = os.path.join(_CACHE, "node-" + "-".join(p.replace("@", "").replace("/", "-") for p in packages))
    if not os.path.isfile(os.path.join(target, ".installed")):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, "package.json"), "w") as f:
            json.dump({"name": "chatport-newest-sdk", "private": True, "type": "module"}, f)
        npm = shutil.which("npm") or "npm"
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", *packages], cwd=target, check=True, capture_output=True, timeout=600
        )
        open(os.path.join(target, ".installed"), "w").close()
    return target


def run_node_beside(directory: str, script: str, env: dict[str, str]) -> dict:
    """tests/node's ``script`` run from ``directory`` (so that it imports what is installed
    there), with ``env`` added; its last line is a JSON report."""
    shutil.copy(os.path.join(_NODE_SCRIPTS, script), directory)
    out = subprocess.run(
        ["node", script], cwd=directory, env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    report: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return report
