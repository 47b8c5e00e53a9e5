"""Cut a release, or check that the version, the changelog and the contract image agree.

    python scripts/release.py 0.5.0          # on the commit to release: version, changelog, image
    python scripts/release.py --check        # CI: the version is the changelog's latest release

Cutting a release sets `fabric_jobs/_version.py`, turns the changelog's "Unreleased" section into the
release's (dated today, UTC) under a fresh empty "Unreleased", and rebuilds `proto/fabric_jobs_v1.binpb`,
the image of the released contract that `buf breaking` checks every later change against. It commits
nothing: it prints the commit and tag commands to run after reading the diff.
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = Path("fabric_jobs", "_version.py")
CHANGELOG = Path("CHANGELOG.md")
PROTO_IMAGE = Path("proto", "fabric_jobs_v1.binpb")

SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_VERSION_LINE = re.compile(r'^__version__ = "([^"]*)"$', re.MULTILINE)
_RELEASE_HEADING = re.compile(r"^## (\S+) - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)
UNRELEASED_HEADING = "## Unreleased"


class ReleaseError(Exception):
    """What stops a release or a check: the message is the one line printed."""


def current_version(root: Path = ROOT) -> str:
    match = _VERSION_LINE.search((root / VERSION_FILE).read_text(encoding="utf-8"))
    if match is None:
        raise ReleaseError(f"{VERSION_FILE} has no __version__ line")
    return match[1]


def latest_release(changelog: str) -> str:
    """The version of the newest dated section of the changelog."""
    match = _RELEASE_HEADING.search(changelog)
    if match is None:
        raise ReleaseError("CHANGELOG.md has no released section ('## X.Y.Z - YYYY-MM-DD')")
    return match[1]


def _parts(version: str) -> tuple[int, int, int]:
    match = SEMVER.fullmatch(version)
    if match is None:
        raise ReleaseError(f"{version!r} is not a semantic version MAJOR.MINOR.PATCH")
    return int(match[1]), int(match[2]), int(match[3])


def check(root: Path = ROOT) -> str:
    """The version, once it is a semantic version and the changelog's newest release."""
    version = current_version(root)
    _parts(version)
    changelog = (root / CHANGELOG).read_text(encoding="utf-8")
    released = latest_release(changelog)
    if released != version:
        raise ReleaseError(
            f"fabric_jobs/_version.py says {version} but the newest release in CHANGELOG.md is {released}: "
            "cut releases with scripts/release.py"
        )
    if UNRELEASED_HEADING + "\n" not in changelog:
        raise ReleaseError(f"CHANGELOG.md has no '{UNRELEASED_HEADING}' section for the work after {version}")
    return version


def release_changelog(changelog: str, version: str, date: datetime.date) -> str:
    """The changelog with its Unreleased section turned into `version`'s and a fresh empty one above it."""
    if changelog.count(UNRELEASED_HEADING + "\n") != 1:
        raise ReleaseError(f"CHANGELOG.md must have exactly one '{UNRELEASED_HEADING}' section")
    start = changelog.index(UNRELEASED_HEADING + "\n") + len(UNRELEASED_HEADING) + 1
    following = _RELEASE_HEADING.search(changelog, start)
    body = changelog[start : following.start() if following else len(changelog)]
    if not body.strip():
        raise ReleaseError("the Unreleased section of CHANGELOG.md is empty: nothing to release")
    return changelog.replace(
        UNRELEASED_HEADING + "\n", f"{UNRELEASED_HEADING}\n\n## {version} - {date.isoformat()}\n", 1
    )


def cut(version: str, root: Path = ROOT) -> None:
    current = current_version(root)
    if _parts(version) <= _parts(current):
        raise ReleaseError(f"{version} is not after the current version {current}")
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if buf is None:
        raise ReleaseError("buf is not installed (pip install -e '.[dev]' brings it)")
    today = datetime.datetime.now(datetime.UTC).date()
    changelog = release_changelog((root / CHANGELOG).read_text(encoding="utf-8"), version, today)
    subprocess.run([buf, "build", "-o", str(PROTO_IMAGE)], cwd=root, check=True)
    (root / CHANGELOG).write_text(changelog, encoding="utf-8")
    version_text = (root / VERSION_FILE).read_text(encoding="utf-8")
    (root / VERSION_FILE).write_text(_VERSION_LINE.sub(f'__version__ = "{version}"', version_text), encoding="utf-8")
    print(f"release {version}: {VERSION_FILE}, {CHANGELOG} and {PROTO_IMAGE} updated. Read the diff, then:")
    print(f'  git commit -am "Release {version}" && git tag -a v{version} -m "fabric-jobs {version}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("version", nargs="?", help="the version to release, MAJOR.MINOR.PATCH")
    group.add_argument("--check", action="store_true", help="check that version and changelog agree")
    args = parser.parse_args(argv)
    try:
        if args.check:
            print(f"fabric-jobs {check()}: the version is the newest release in CHANGELOG.md")
        else:
            cut(args.version)
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
