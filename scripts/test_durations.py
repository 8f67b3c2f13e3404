"""Per-module test seconds from pytest's JUnit XML, for tests/durations.json (which tests/conftest.py orders by).

    .venv/bin/python -m pytest -n 2 --dist loadfile --junitxml=/tmp/junit.xml
    .venv/bin/python scripts/test_durations.py /tmp/junit.xml > tests/durations.json

A module's seconds are its tests' times summed (fixtures included, as JUnit reports them), rounded.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_of(classname: str) -> str | None:
    """tests.swap.test_swap (or tests.swap.test_swap.TestX, a class) -> tests/swap/test_swap.py."""
    parts = classname.split(".")
    while parts and not (ROOT / Path(*parts).with_suffix(".py")).is_file():
        parts.pop()
    return "/".join(parts) + ".py" if parts else None


def module_seconds(paths: list[str]) -> dict[str, int]:
    seconds: Counter[str] = Counter()
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            module = module_of(case.get("classname", ""))
            if module is not None:
                seconds[module] += float(case.get("time") or 0)
    return {module: round(total) for module, total in sorted(seconds.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_durations.py JUNIT.xml [...] > tests/durations.json")
    json.dump(module_seconds(sys.argv[1:]), sys.stdout, indent=1)
    sys.stdout.write("\n")
