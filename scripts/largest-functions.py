#!/usr/bin/env python3
"""Lists the longest functions of the Rust sources given (default: src and actors/src).

A function runs from its `fn` line to the closing brace at the same indentation;
good enough for rustfmt-formatted code. Usage: scripts/largest-functions.py [N] [DIR...]"""
import os
import re
import sys

args = sys.argv[1:]
count = int(args.pop(0)) if args and args[0].isdigit() else 5
roots = args or ["src", "actors/src"]
start = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)")
found = []
for root in roots:
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                m = start.match(line)
                if not m or line.rstrip().endswith(";"):
                    continue
                indent = m.group(1)
                for j in range(i + 1, len(lines)):
                    if lines[j] == indent + "}":
                        found.append((j - i + 1, f"{path}:{i + 1}", m.group(7)))
                        break
found.sort(reverse=True)
for length, where, fn in found[:count]:
    print(f"{length:5} {fn:40} {where}")
