"""Regenerate the Python code of proto/ into fabric_jobs/v1 (the package mirrors the proto package).

    python scripts/generate_proto.py          # delete and regenerate
    python scripts/generate_proto.py --check  # exit 1 if the checked-in code is stale

The generators are pinned in pyproject.toml (grpcio-tools, mypy-protobuf) so that the output is
the same on every machine.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = "fabric_jobs/v1"
INIT_TEXT = '"""Generated from proto/fabric_jobs/v1 by scripts/generate_proto.py. Do not edit."""\n'


def _plugin(name: str) -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    path = scripts / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            sys.exit(f"generate_proto: {name} not found; install the dev extra (pip install -e '.[dev]')")
        return found
    return str(path)


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--mypy_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    subprocess.run(command, check=True)
    (out / PACKAGE / "__init__.py").write_text(INIT_TEXT)
    (out / PACKAGE / "py.typed").write_text("")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args()
    target = ROOT / PACKAGE
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh = Path(tmp) / PACKAGE
            compare = filecmp.dircmp(fresh, target, ignore=["__pycache__"])
            stale = compare.left_only + compare.right_only + compare.diff_files
            if stale:
                print(f"generated code in {PACKAGE} is stale: {', '.join(sorted(stale))}")
                print("run: python scripts/generate_proto.py")
                return 1
        print(f"generated code in {PACKAGE} is fresh")
        return 0
    shutil.rmtree(target, ignore_errors=True)
    generate(ROOT)
    print(f"regenerated {PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
