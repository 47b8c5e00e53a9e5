"""The servers under test, each a separate process on loopback with ports picked by the OS (port 0).

A server prints the addresses it listens on; `start` waits for those lines in its output file, and
`stop` ends it (SIGTERM, then SIGKILL after a bounded wait). Use them with `async with`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from benchmarks.measure import ROOT, cpu_seconds_of

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0
GRPC_LINE = re.compile(r"gRPC JobService on (\S+:\d+)")
REST_LINE = re.compile(r"REST bridge on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")
BASELINE_LINE = re.compile(r"baseline app on http://(\[[^\]]+\]|[^:/\s]+):(\d+)")
WORKER_LINE = re.compile(r"fabric-jobs: worker started")


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
    """A started server: its pid and the addresses it announced (`addresses[name]` is host:port, or the whole
    line for a pattern without groups); ready_ms is the wall-clock time (ms) at which it had announced them all."""

    def __init__(self, name: str, command: list[str], log_dir: Path, patterns: dict[str, re.Pattern[str]]) -> None:
        self.name = name
        self.command = command
        self.patterns = patterns
        self.log_path = log_dir / f"{name}.log"
        self.addresses: dict[str, str] = {}
        self.ready_ms = 0
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
                    self.addresses[name] = (
                        ":".join(match.groups()) if pattern.groups > 1 else match.group(pattern.groups)
                    )
            if len(self.addresses) == len(self.patterns):
                self.ready_ms = time.time_ns() // 1_000_000
                return
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self._process.returncode}) at start:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"{self.name} did not announce its addresses in {START_TIMEOUT_SECONDS:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash; nothing of it runs after this returns."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(STOP_TIMEOUT_SECONDS)

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


async def start_together(stack: contextlib.AsyncExitStack, *servers: ServerProcess) -> None:
    """Start the servers at the same time; each is stopped when `stack` closes, even if another failed to start."""
    for server in servers:
        stack.push_async_callback(server.stop)
    failures = [
        outcome
        for outcome in await asyncio.gather(*(server.start() for server in servers), return_exceptions=True)
        if isinstance(outcome, BaseException)
    ]
    if failures:
        raise failures[0]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    return cpu_seconds_of((pid,))


def postgres_cpu_seconds() -> float:
    """CPU time used so far by the processes named postgres on this machine (the server and its backends)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(")")
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def _fabric_jobs(command: str, database: str, *extra: str) -> list[str]:
    """`fabric-jobs COMMAND` on `database` with the demo's job types, named as every process on PostgreSQL must."""
    jobs = ("--jobs", "fabric_jobs.demo:registry")
    return [*fabric_jobs_command(), command, "--log-level", "WARNING", "--database", database, *jobs, *extra]


def serve(log_dir: Path, database: str, name: str = "serve", *extra: str) -> ServerProcess:
    """`fabric-jobs serve --dev` on a database URL (a fresh or seeded SQLite file, or PostgreSQL), logging
    warnings only.

    --shutdown-grace is short only so that stopping it with thousands of running demo jobs is quick.
    """
    command = _fabric_jobs(
        "serve",
        database,
        "--dev",
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        "0",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--shutdown-grace",
        "0.1",
        *extra,
    )
    return ServerProcess(name, command, log_dir, {"grpc": GRPC_LINE, "rest": REST_LINE})


def grpc_replica(log_dir: Path, database: str, name: str, *extra: str) -> ServerProcess:
    """`fabric-jobs grpc` on PostgreSQL: a JobService replica that runs no handlers."""
    command = _fabric_jobs("grpc", database, "--grpc-host", "127.0.0.1", "--grpc-port", "0", *extra)
    return ServerProcess(name, command, log_dir, {"grpc": GRPC_LINE})


def rest_bridge(log_dir: Path, grpc_target: str, name: str, *extra: str) -> ServerProcess:
    """`fabric-jobs rest --dev`: the REST bridge alone, calling the JobService at `grpc_target`."""
    command = [
        *fabric_jobs_command(),
        "rest",
        "--log-level",
        "WARNING",
        "--dev",
        "--grpc-target",
        grpc_target,
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        "0",
        *extra,
    ]
    return ServerProcess(name, command, log_dir, {"rest": REST_LINE})


def worker(log_dir: Path, database: str, name: str, *extra: str) -> ServerProcess:
    """`fabric-jobs worker` on PostgreSQL, running the demo handlers; ready once it says it takes jobs."""
    command = _fabric_jobs("worker", database, "--shutdown-grace", "0.1", *extra)
    return ServerProcess(name, command, log_dir, {"started": WORKER_LINE})


def baseline(log_dir: Path, database: str, name: str = "baseline") -> ServerProcess:
    """The baseline app on a database URL: sqlite:///file or postgresql://…"""
    command = [sys.executable, "-m", "benchmarks.baseline_app", database]
    return ServerProcess(name, command, log_dir, {"http": BASELINE_LINE})
