"""The README is a front door that works, the documentation site builds from the code, and one version shows
everywhere."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fabric_jobs
import fabric_jobs.client
from fabric_jobs.cli.options import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)

sys.path.insert(0, str(ROOT / "scripts"))
import release  # noqa: E402


def _slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text)


def _anchors(markdown: Path) -> set[str]:
    text = _FENCE.sub("", markdown.read_text(encoding="utf-8"))
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    first, second = (block for _, block in _FENCE.findall(text)[:2])
    assert "pip install -e '.[dev]'" in first
    assert "fabric-jobs serve --dev" in first
    assert second.strip() == ".venv/bin/python -m pytest"
    assert text.index(first) < text.index("## ")


@pytest.mark.parametrize("document", ["README.md", "CHANGELOG.md", "examples/forecast_workload/README.md"])
def test_every_relative_link_resolves(document: str) -> None:
    path = ROOT / document
    broken = []
    for target in _LINK.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert broken == []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built as CI builds it: strict, so any warning fails the build."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs is not None, "mkdocs is in the dev extra: pip install -e '.[dev]'"
    built = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(built)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return built


def _options(parser: argparse.ArgumentParser) -> set[str]:
    options: set[str] = set()
    for action in parser._actions:
        options.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _options(sub)
    return options


@pytest.mark.timeout(180)
def test_the_generated_reference_pages_hold_every_option_method_and_metric(site: Path) -> None:
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    options = _options(build_parser())
    assert len(options) > 50
    assert {option for option in options if option not in cli} == set()

    from fabric_jobs.v1 import admin_service_pb2, job_service_pb2

    grpc_page = (site / "reference" / "grpc" / "index.html").read_text(encoding="utf-8")
    for module in (job_service_pb2, admin_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.name in grpc_page
            assert {method.name for method in service.methods if method.name not in grpc_page} == set()
        assert {name for name in module.DESCRIPTOR.message_types_by_name if name not in grpc_page} == set()

    from fabric_jobs.observability import metrics

    metrics_page = (site / "reference" / "metrics" / "index.html").read_text(encoding="utf-8")
    exposed = {family.name for family in metrics.REGISTRY.collect() if family.name.startswith("fabric_jobs_")}
    assert exposed
    assert {name for name in exposed if name not in metrics_page} == set()

    api = (site / "reference" / "python-api" / "index.html").read_text(encoding="utf-8")
    documented = {name for name in fabric_jobs.__all__ if f'id="fabric_jobs.{name}"' in api}
    assert set(fabric_jobs.__all__) - documented == set()
    client_names = set(fabric_jobs.client.__all__)
    assert {name for name in client_names if f'id="fabric_jobs.client.{name}"' not in api} == set()


@pytest.mark.timeout(180)
def test_the_site_and_the_changelog_show_the_package_version(site: Path) -> None:
    assert fabric_jobs.__version__ in (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert fabric_jobs.__version__ in (site / "index.html").read_text(encoding="utf-8")


def test_fabric_jobs_version_prints_the_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fabric_jobs.cli", "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == f"fabric-jobs {importlib.metadata.version('fabric-jobs')}"
    assert importlib.metadata.version("fabric-jobs") == fabric_jobs.__version__


def test_the_version_is_the_changelogs_newest_release() -> None:
    assert release.check() == fabric_jobs.__version__


def _copy_for_release(tmp_path: Path) -> Path:
    for name in ("CHANGELOG.md", "buf.yaml", "fabric_jobs/_version.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    (tmp_path / "proto" / "fabric_jobs_v1.binpb").unlink()
    return tmp_path


@pytest.mark.timeout(120)
def test_cutting_a_release_sets_the_version_dates_the_changelog_and_builds_the_image(tmp_path: Path) -> None:
    root = _copy_for_release(tmp_path)
    major, minor, _ = (int(part) for part in fabric_jobs.__version__.split("."))
    version = f"{major}.{minor + 1}.0"
    unreleased = (root / "CHANGELOG.md").read_text(encoding="utf-8").split("## Unreleased\n", 1)[1]
    unreleased = unreleased[: unreleased.index("\n## ")]

    release.cut(version, root)

    assert release.check(root) == version
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.search(rf"^## {re.escape(version)} - (\d{{4}}-\d{{2}}-\d{{2}})$", changelog, re.MULTILINE)
    assert released is not None
    assert changelog.index("## Unreleased\n") < released.start()
    assert unreleased.strip() in changelog[released.end() :]
    assert (root / "proto" / "fabric_jobs_v1.binpb").stat().st_size > 0
    with pytest.raises(release.ReleaseError, match="empty"):
        release.cut(f"{major}.{minor + 2}.0", root)


@pytest.mark.parametrize(
    ("version", "message"),
    [("0.0.1", "not after the current version"), ("1.0", "not a semantic version"), ("v1.0.0", "not a semantic")],
)
def test_a_release_version_must_be_semantic_and_newer(tmp_path: Path, version: str, message: str) -> None:
    root = _copy_for_release(tmp_path)
    with pytest.raises(release.ReleaseError, match=message):
        release.cut(version, root)
    assert release.check(root) == fabric_jobs.__version__
