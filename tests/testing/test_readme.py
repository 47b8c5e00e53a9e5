"""The handler examples of the README and of the author's guide are real: their files, written out, pass their tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILE_BLOCK = re.compile(r"```python\n# (?P<path>[\w/]+\.py)\n(?P<code>.*?)```", re.DOTALL)


def _section(document: str, title: str | None) -> str:
    """The section under `title` (a whole `## ` heading line), or the whole document."""
    text = (ROOT / document).read_text()
    if title is None:
        return text
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + len(title) + 2)
    return text[start : end if end > 0 else len(text)]


@pytest.mark.parametrize(
    ("document", "title", "passed"),
    [("README.md", "## A job handler", 1), ("docs/handlers.md", None, 4)],
)
def test_the_handler_example_passes_its_tests(
    pytester: pytest.Pytester, document: str, title: str | None, passed: int
) -> None:
    files = {match["path"]: match["code"] for match in FILE_BLOCK.finditer(_section(document, title))}
    assert set(files) == {"mypkg/jobs.py", "tests/test_jobs.py"}
    pytester.makepyfile(**{"mypkg/__init__": ""})
    for path, code in files.items():
        pytester.makepyfile(**{path.removesuffix(".py"): code})
    pytester.syspathinsert()
    result = pytester.runpytest("-p", "no:asyncio", "-W", "error", "--strict-markers", "tests")
    result.assert_outcomes(passed=passed)


PYTHONPATH_CONFIG = re.compile(r"```toml\n# pyproject.toml\n(?P<config>.*?)```", re.DOTALL)


@pytest.mark.timeout(120)
def test_the_guides_test_commands_work_as_shown(pytester: pytest.Pytester) -> None:
    """`python -m pytest` from the project's folder, and plain `pytest` with the guide's pyproject.toml: the package
    under test is not installed, and neither command is given a path."""
    guide = _section("docs/handlers.md", None)
    files = {match["path"]: match["code"] for match in FILE_BLOCK.finditer(guide)}
    pytester.makepyfile(**{"mypkg/__init__": ""})
    for path, code in files.items():
        pytester.makepyfile(**{path.removesuffix(".py"): code})
    as_module = pytester.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", timeout=100)
    assert as_module.parseoutcomes().get("passed") == 4, as_module.stdout.str()

    config = PYTHONPATH_CONFIG.search(guide)
    assert config is not None, "the guide shows no pyproject.toml for plain pytest"
    (pytester.path / "pyproject.toml").write_text(config["config"])
    plain = pytester.run(Path(sys.executable).parent / "pytest", "-p", "no:cacheprovider", timeout=100)
    assert plain.parseoutcomes().get("passed") == 4, plain.stdout.str()
