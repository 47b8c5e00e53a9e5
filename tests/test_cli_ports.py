"""A port that is taken: one line naming the option, exit status 2, and nothing announced as started before."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import STARTUP_SECONDS, clean_env, command


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("command_name", "option", "other_ports"),
    [
        ("serve", "--grpc-port", ["--rest-port", "0"]),
        ("grpc", "--grpc-port", []),
        ("serve", "--rest-port", ["--grpc-port", "0"]),
        ("rest", "--rest-port", []),
        ("serve", "--admin-port", ["--grpc-port", "0", "--rest-port", "0"]),
    ],
)
def test_a_taken_port_is_one_line_naming_its_option(
    tmp_path: Path, taken_port: int, command_name: str, option: str, other_ports: list[str]
) -> None:
    database = [] if command_name == "rest" else ["--database", f"sqlite:///{tmp_path / 'jobs.db'}"]
    args = [command_name, "--dev", *database, *other_ports, option, str(taken_port)]
    done = subprocess.run(
        command(*args), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env(), cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip() and "DEV MODE" not in line]
    assert errors == [
        f"fabric-jobs {command_name}: error: {option}: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    ], done.stderr
    assert done.stdout == "", "announced as started before the port was found taken"
