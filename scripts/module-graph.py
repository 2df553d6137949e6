#!/usr/bin/env python3
"""Prints which top-level module of a crate names which other one, as the
architecture test (tests/architecture) reads it: `crate::x` outside comments
and outside what follows `#[cfg(test)]`.

Usage: scripts/module-graph.py [src|actors/src] [--dot]
With --dot the output is Graphviz: `scripts/module-graph.py src --dot | dot -Tsvg > src.svg`."""
import os
import re
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
root = args[0] if args else "src"
dot = "--dot" in sys.argv
edges = {}
for folder, _, files in os.walk(root):
    for name in files:
        if not name.endswith(".rs") or name == "tests.rs":
            continue
        path = os.path.join(folder, name)
        top = os.path.relpath(path, root).split(os.sep)[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        code = []
        for line in open(path, encoding="utf-8"):
            stripped = line.strip()
            if stripped.startswith("#[cfg(test)]"):
                break
            if not stripped.startswith("//"):
                code.append(line.split(" //")[0])
        text = "".join(code)
        named = re.findall(r"\bcrate::(\w+)", text)
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            named += [item.strip().split("::")[0] for item in group.split(",") if item.strip()]
        for other in named:
            exists = os.path.exists(f"{root}/{other}.rs") or os.path.exists(f"{root}/{other}/mod.rs")
            if other != top and exists:
                edges.setdefault(top, set()).add(other)
if dot:
    print("digraph modules {\n  rankdir=BT;")
    for a in sorted(edges):
        for b in sorted(edges[a]):
            print(f'  "{a}" -> "{b}";')
    print("}")
else:
    for a in sorted(edges):
        print(f"{a:12} -> {', '.join(sorted(edges[a]))}")
