"""Build the fabric-jobs container image with podman on a Debian machine that reaches no image registry.

python3 scripts/podman_image.py prepare   # podman, runc, mmdebstrap, uidmap; containers.conf; the base image
python3 scripts/podman_image.py build     # prepare, then build the Containerfile; prints what it made as JSON
python3 scripts/podman_image.py env       # prints CONTAINERS_CONF=…, for `export "$(…)"` before podman commands

What it does, each step only when needed:
- installs podman, runc, mmdebstrap and uidmap with apt-get when one is missing (as root);
- writes a containers.conf (given to podman through CONTAINERS_CONF) with `default_ulimits = []` and the
  runc runtime: crun, the default, cannot set rlimits here and does not support hybrid cgroups;
- builds the base image `localhost/fabric-jobs-base:KEY` with mmdebstrap from Debian's packages (python3,
  python3-venv, ca-certificates; merged /usr without the usrmerge package, which would bring perl; no
  manuals, translations or documentation but the licences) and imports it. KEY is a digest of the mmdebstrap
  command, so a change of it makes a new base; the tarball is kept in the cache directory
  (FABRIC_JOBS_CACHE_DIR, default /var/cache/fabric-jobs as root, else ~/.cache/fabric-jobs), and both
  the tarball and the podman image are reused by every later run on the machine;
- builds the Containerfile with `--build-arg BASE_IMAGE=` that base, on the host's network, with the
  host's CA bundle as the build secret `ca-certificates` (a TLS-intercepting proxy between the build and
  PyPI is trusted only through it).

On a machine with docker or a reachable registry none of this is needed: `docker build .` builds the
same Containerfile on its default base, the official slim Python image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGE = "localhost/fabric-jobs:dev"
BASE_REPOSITORY = "localhost/fabric-jobs-base"
PACKAGES = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap", "newuidmap": "uidmap"}
"""Debian package of each command the build needs."""
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
HOST_CA_BUNDLE = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
MMDEBSTRAP = [
    "mmdebstrap",
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--aptopt=Acquire::Languages none",
    "bookworm",
]
"""The base: Debian bookworm's python3 (3.11), without manuals, translations and documentation but the licences."""


class SetupError(Exception):
    """What stopped the preparation, in one line."""


def cache_dir() -> pathlib.Path:
    configured = os.environ.get("FABRIC_JOBS_CACHE_DIR")
    if configured:
        return pathlib.Path(configured)
    if os.geteuid() == 0:
        return pathlib.Path("/var/cache/fabric-jobs")
    return pathlib.Path.home() / ".cache" / "fabric-jobs"


def containers_conf() -> pathlib.Path:
    return cache_dir() / "containers.conf"


def podman_env() -> dict[str, str]:
    """This process's environment with CONTAINERS_CONF set: what every podman command here runs with."""
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}


def base_key() -> str:
    return hashlib.sha256("\0".join(MMDEBSTRAP).encode()).hexdigest()[:12]


def base_image() -> str:
    return f"{BASE_REPOSITORY}:{base_key()}"


def _log(message: str) -> None:
    print(f"podman_image: {message}", file=sys.stderr, flush=True)


def _run(*args: str, log: pathlib.Path | None = None) -> None:
    """Run a command, its output on stderr, or in `log` (named in the error if it fails)."""
    with open(log, "w") if log is not None else open(os.devnull, "w") as sink:
        output = sink if log is not None else sys.stderr
        done = subprocess.run(args, env=podman_env(), stdout=output, stderr=output, check=False)
    if done.returncode != 0:
        where = f"; its output is in {log}" if log is not None else ""
        raise SetupError(f"`{' '.join(args)}` exited {done.returncode}{where}")


def ensure_packages() -> None:
    missing = sorted({package for command, package in PACKAGES.items() if shutil.which(command) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(f"missing {', '.join(missing)}: install them (apt-get install {' '.join(missing)}) as root")
    _log(f"installing {', '.join(missing)}")
    os.environ["DEBIAN_FRONTEND"] = "noninteractive"
    log = pathlib.Path("/var/log/fabric-jobs-podman-apt.log")
    _run("apt-get", "update", "-qq", log=log)
    _run("apt-get", "install", "-y", "-qq", *missing, log=log)


def ensure_containers_conf() -> None:
    path = containers_conf()
    if not path.exists() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF)


def _image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], env=podman_env(), check=False).returncode == 0


def ensure_base_image(*, refresh: bool = False) -> str:
    """The base image's name; built with mmdebstrap only when neither the image nor its tarball is cached."""
    name = base_image()
    tarball = cache_dir() / f"fabric-jobs-base-{base_key()}.tar"
    if refresh:
        tarball.unlink(missing_ok=True)
    elif _image_exists(name):
        return name
    if not tarball.exists():
        for stale in cache_dir().glob("fabric-jobs-base-*.tar"):
            stale.unlink()
        _log(f"building the base image with mmdebstrap into {tarball} (a few minutes, once per machine)")
        partial = tarball.with_suffix(".partial")
        _run(*MMDEBSTRAP, "--format=tar", str(partial), log=tarball.with_suffix(".log"))
        partial.rename(tarball)
    _run("podman", "import", "--quiet", str(tarball), name, log=cache_dir() / "podman-import.log")
    return name


def prepare(*, refresh_base: bool = False) -> str:
    ensure_packages()
    ensure_containers_conf()
    return ensure_base_image(refresh=refresh_base)


def _version() -> str:
    """fabric-jobs' version, read as the release script reads it (this folder is on sys.path when run)."""
    from release import ReleaseError, current_version

    try:
        return current_version()
    except ReleaseError as exc:
        raise SetupError(str(exc)) from exc


def revision() -> str:
    """The git commit of the work tree, or empty outside a git repository."""
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def build(
    tag: str,
    *,
    refresh_base: bool = False,
    target: str | None = None,
    containerfile: pathlib.Path = ROOT / "Containerfile",
) -> dict[str, str]:
    """Build `containerfile` (its folder is the context; the repository's for the Containerfile) on the base."""
    base = prepare(refresh_base=refresh_base)
    args = ["podman", "build", "--format", "docker", "--network", "host", "--tag", tag]
    args += ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"VERSION={_version()}"]
    args += ["--build-arg", f"REVISION={revision()}"]
    if HOST_CA_BUNDLE.exists():
        args += ["--secret", f"id=ca-certificates,src={HOST_CA_BUNDLE}"]
    if target is not None:
        args += ["--target", target]
    context = ROOT if containerfile == ROOT / "Containerfile" else containerfile.parent
    _run(*args, "--file", str(containerfile), str(context), log=cache_dir() / f"build-{tag.replace('/', '_')}.log")
    return {"image": tag, "base_image": base, "containers_conf": str(containers_conf())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare", help="packages, containers.conf and the base image")
    build_parser = commands.add_parser("build", help="prepare, then build an image on the base")
    for sub in (prepare_parser, build_parser):
        sub.add_argument("--refresh-base", action="store_true", help="build the base image again with mmdebstrap")
    build_parser.add_argument("--tag", default=IMAGE, help="name of the image (default: %(default)s)")
    build_parser.add_argument("--target", help="stage of the Containerfile to build (default: the last, the image)")
    build_parser.add_argument(
        "--file", type=pathlib.Path, default=ROOT / "Containerfile", help="the Containerfile to build"
    )
    commands.add_parser("env", help="print CONTAINERS_CONF=…")
    args = parser.parse_args()
    try:
        if args.command == "env":
            print(f"CONTAINERS_CONF={containers_conf()}")
        elif args.command == "prepare":
            print(json.dumps({"base_image": prepare(refresh_base=args.refresh_base)}))
        else:
            containerfile = args.file.resolve()
            made = build(args.tag, refresh_base=args.refresh_base, target=args.target, containerfile=containerfile)
            print(json.dumps(made))
    except SetupError as exc:
        print(f"podman_image: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
