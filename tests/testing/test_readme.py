"""The README's example of writing and testing handlers is real: its files, written out, pass their tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
FILE_BLOCK = re.compile(r"```python\n# (?P<path>[\w/]+\.py)\n(?P<code>.*?)```", re.DOTALL)


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_handler_example_passes_its_tests(pytester: pytest.Pytester) -> None:
    files = {match["path"]: match["code"] for match in FILE_BLOCK.finditer(_section("Writing job handlers"))}
    assert set(files) == {"mypkg/jobs.py", "tests/test_jobs.py"}
    pytester.makepyfile(**{"mypkg/__init__": ""})
    for path, code in files.items():
        pytester.makepyfile(**{path.removesuffix(".py"): code})
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:asyncio", "-W", "error", "--strict-markers", "tests")
    result.assert_outcomes(passed=4)
