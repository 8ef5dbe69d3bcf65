"""The longest functions and the largest modules of the package, from its syntax trees:
``python scripts/code_sizes.py [--top N] [PATH]`` (default: chatport/, 15 of each).

A function's length counts its lines from ``def`` to its last statement, docstring and
comments included, nested functions within it; a module's, its lines."""

from __future__ import annotations

import argparse
import ast
import os


def functions(path: str) -> list[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            out.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="chatport")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    found: list[tuple[int, str]] = []
    modules: list[tuple[int, str]] = []
    for root, _dirs, files in os.walk(args.path):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                found += functions(path)
                with open(path, encoding="utf-8") as f:
                    modules.append((sum(1 for _ in f), path))
    print(f"Longest functions ({len(found)} in all):")
    for length, where in sorted(found, reverse=True)[: args.top]:
        print(f"  {length:4d}  {where}")
    print(f"Largest modules ({len(modules)} in all):")
    for length, where in sorted(modules, reverse=True)[: args.top]:
        print(f"  {length:4d}  {where}")


if __name__ == "__main__":
    main()
