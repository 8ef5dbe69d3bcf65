"""The newest releases of the official SDKs, installed apart from the suite's pins (openai
1.106 on PyPI, openai 6 on npm) and cached between runs: the issues ask for both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

NEWEST_PYTHON_SDK = "openai==3.63.0"
NEWEST_NODE_SDK = "openai@7.60.0"
ZOD = "zod@3.25.76"  # as tests/node/package.json pins it
_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "chatport", "sdk")


def newest_python_sdk() -> str:
    """A target directory holding the newest openai-python, to put first on PYTHONPATH."""
    target = os.path.join(_CACHE, NEWEST_PYTHON_SDK.replace("==", "-"))
    if not os.path.isdir(os.path.join(target, "openai")):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", target, NEWEST_PYTHON_SDK],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return target


def newest_node_sdk() -> str:
    """A directory whose node_modules hold the newest openai npm package (and zod): a
    script copied there imports them."""
    target = os.path.join(_CACHE, "node-" + NEWEST_NODE_SDK.replace("@", "-"))
    if not os.path.isdir(os.path.join(target, "node_modules", "openai")):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, "package.json"), "w") as f:
            json.dump({"name": "chatport-newest-sdk", "private": True, "type": "module"}, f)
        npm = shutil.which("npm") or "npm"
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", NEWEST_NODE_SDK, ZOD],
            cwd=target,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return target
