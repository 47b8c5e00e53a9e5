"""The servers under test, each a separate process on loopback with ports picked by the OS (port 0).

A server prints the addresses it listens on; `start` waits for those lines in its output file, and
`stop` ends it (SIGTERM, then SIGKILL after a bounded wait). Use them with `async with`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from benchmarks.measure import ROOT

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
GRPC_LINE = re.compile(r"gRPC JobService on (\S+:\d+)")
REST_LINE = re.compile(r"REST bridge on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")
BASELINE_LINE = re.compile(r"baseline app on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")


def fabric_jobs_command() -> list[str]:
    """The `fabric-jobs` console script of this interpreter's environment (or the module, if it is not installed)."""
    script = Path(sys.executable).parent / "fabric-jobs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fabric_jobs.cli"]


def rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class ServerProcess:
    """A started server: its pid and the addresses it announced (`addresses[name]` is host:port)."""

    def __init__(self, name: str, command: list[str], log_dir: Path, patterns: dict[str, re.Pattern[str]]) -> None:
        self.name = name
        self.command = command
        self.patterns = patterns
        self.log_path = log_dir / f"{name}.log"
        self.addresses: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._spawn()
        try:
            await self._wait_for_addresses()
        except BaseException:
            await self.stop()
            raise

    def _spawn(self) -> None:
        paths = [str(ROOT), os.environ.get("PYTHONPATH")]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, env=environment
            )

    async def _wait_for_addresses(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for name, pattern in self.patterns.items():
                match = pattern.search(text)
                if match is not None:
                    self.addresses[name] = ":".join(match.groups()) if pattern.groups > 1 else match.group(1)
            if len(self.addresses) == len(self.patterns):
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self._process.returncode}) at start:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"{self.name} did not announce its addresses in {START_TIMEOUT_SECONDS:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_SECONDS)


def serve(log_dir: Path, database: Path, name: str = "serve") -> ServerProcess:
    """`fabric-jobs serve --dev` on a fresh or seeded SQLite file, logging warnings only.

    --shutdown-grace is short only so that stopping it with thousands of running demo jobs is quick.
    """
    command = [
        *fabric_jobs_command(),
        "serve",
        "--dev",
        "--log-level",
        "WARNING",
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        "0",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--database",
        f"sqlite:///{database}",
        "--shutdown-grace",
        "0.1",
    ]
    return ServerProcess(name, command, log_dir, {"grpc": GRPC_LINE, "rest": REST_LINE})


def baseline(log_dir: Path, database: Path) -> ServerProcess:
    command = [sys.executable, "-m", "benchmarks.baseline_app", str(database)]
    return ServerProcess("baseline", command, log_dir, {"http": BASELINE_LINE})
