"""`--jobs`: the registry a process loads, as a workload team runs the installed `fabric-jobs` command from its
own folder; on PostgreSQL every process names it, and each says which job types it loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import STARTUP_SECONDS, clean_env, command, kill_if_running, launch, stop

FABRIC_JOBS = Path(sys.executable).parent / "fabric-jobs"
"""The console script, as a user runs it: unlike `python -m`, it does not put the current directory on sys.path."""
ITEM_TYPE = "Contoso.Team.Item"

JOBS_MODULE = f'''
from fabric_jobs import JobContext, JobRegistry

registry = JobRegistry()


@registry.job("{ITEM_TYPE}", "{ITEM_TYPE}.Run")
async def run(ctx: JobContext) -> None:
    pass
'''


def write_package(folder: Path) -> Path:
    package = folder / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(JOBS_MODULE)
    return folder


def fabric_jobs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FABRIC_JOBS), *args], capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env(), cwd=cwd
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_jobs_imports_a_package_of_the_current_directory(tmp_path: Path) -> None:
    done = fabric_jobs("manifest", "--jobs", "mypkg.jobs:registry", cwd=write_package(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f'<ItemJobType Name="{ITEM_TYPE}.Run" />' in done.stdout


def test_app_dir_names_the_folder_to_import_from(tmp_path: Path) -> None:
    write_package(tmp_path / "src")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = fabric_jobs("manifest", "--jobs", "mypkg.jobs:registry", "--app-dir", str(tmp_path / "src"), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f'<ItemJobType Name="{ITEM_TYPE}.Run" />' in done.stdout


def test_a_package_that_is_not_found_asks_whether_it_is_installed(tmp_path: Path) -> None:
    line = one_error_line(fabric_jobs("manifest", "--jobs", "mypkg.jobs:registry", cwd=tmp_path))
    assert "cannot import 'mypkg.jobs': No module named 'mypkg'" in line
    assert "is the package installed" in line
    assert str(tmp_path) in line
    assert "--app-dir" in line


def test_a_misspelt_attribute_is_named_missing(tmp_path: Path) -> None:
    line = one_error_line(fabric_jobs("manifest", "--jobs", "mypkg.jobs:registri", cwd=write_package(tmp_path)))
    assert "module 'mypkg.jobs' has no attribute 'registri'" in line
    assert "its JobRegistry: registry" in line
    assert "not a JobRegistry" not in line


def test_an_attribute_of_another_kind_is_not_a_registry(tmp_path: Path) -> None:
    line = one_error_line(fabric_jobs("manifest", "--jobs", "mypkg.jobs:run", cwd=write_package(tmp_path)))
    assert "'mypkg.jobs:run' is a function, not a JobRegistry" in line


def test_a_module_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    write_package(tmp_path)
    (tmp_path / "mypkg" / "broken.py").write_text("registry = 1 / 0\n")
    line = one_error_line(fabric_jobs("manifest", "--jobs", "mypkg.broken:registry", cwd=tmp_path))
    assert "importing 'mypkg.broken' failed: ZeroDivisionError: division by zero" in line


SCALE_OUT = {"grpc": ["--grpc-port", "0"], "worker": [], "serve": ["--dev", "--grpc-port", "0", "--rest-port", "0"]}


@pytest.mark.parametrize("command_name", list(SCALE_OUT))
def test_on_postgresql_a_process_refuses_the_implicit_demo_registry(
    unmigrated_postgres_url: str, command_name: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        command(command_name, "--database", unmigrated_postgres_url, *SCALE_OUT[command_name]),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(),
        cwd=tmp_path,
    )
    line = one_error_line(
        subprocess.CompletedProcess(done.args, done.returncode, done.stdout, _without_dev_banner(done.stderr))
    )
    assert line.startswith(f"fabric-jobs {command_name}: error: ")
    assert "--jobs" in line
    assert "fabric_jobs.demo:registry" in line


def _without_dev_banner(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if "DEV MODE" not in line)


def test_a_process_logs_the_registry_and_job_types_it_loaded(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["grpc", "--dev", "--grpc-port", "0", "--database", database, "--jobs", "mypkg.jobs:registry"]
    replica = launch(args, grpc=True, cwd=write_package(tmp_path))
    try:
        output = stop(replica)
    finally:
        kill_if_running(replica)
    assert f"job registry mypkg.jobs:registry: 1 job type(s): {ITEM_TYPE}/{ITEM_TYPE}.Run" in output


def test_every_documented_command_on_a_database_url_names_its_registry() -> None:
    """The scale-out commands of the README and docs, with their continuation lines, each carry --jobs."""
    root = Path(__file__).resolve().parents[1]
    commands: list[str] = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = page.read_text().replace("\\\n", " ")
        commands += [line.strip() for line in text.splitlines() if line.strip().startswith("fabric-jobs ")]
    on_postgresql = [
        line for line in commands if line.split()[1] in ("grpc", "worker", "serve") and "--database $DB" in line
    ]
    assert len(on_postgresql) >= 5, on_postgresql
    assert [line for line in on_postgresql if "--jobs" not in line] == []
