"""What every command's options are made with: one option helper, one switch helper, the converters they share.

Every option may also come from the environment variable FABRIC_JOBS_<NAME> (env_name); a bad value says where it
was set. A mistake found after parsing is a ConfigError, whose message is the one line the user sees.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from typing import Any, NoReturn

ENV_PREFIX = "FABRIC_JOBS_"
DEFAULT_GRPC_TARGET = "127.0.0.1:50051"
MAX_SECONDS = 1_000_000
ENV_TRUE = ("1", "true", "yes")

Converter = Callable[[str], Any]


class ConfigError(Exception):
    """Bad configuration: the message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    """A parser whose usage errors point at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def env_name(flag: str) -> str:
    """The environment variable of an option: --cancel-wait is FABRIC_JOBS_CANCEL_WAIT."""
    return ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def flag_or_env(flag: str) -> str:
    return f"{flag} or {env_name(flag)}"


def option(
    group: Any,
    flag: str,
    help_text: str,
    default: str | None = None,
    converter: Converter | None = None,
) -> None:
    """Add `flag`, defaulting to its environment variable and then to `default`; a bad value names where it is set."""
    name = env_name(flag)
    from_env = os.environ.get(name)
    kwargs: dict[str, Any] = {
        "default": default if from_env is None else from_env,
        "help": f"{help_text} [env {name}]",
    }
    if converter is not None:
        kwargs["type"] = _naming_env(converter, name, from_env)
    group.add_argument(flag, **kwargs)


def switch(group: Any, flag: str, help_text: str) -> None:
    """Add an on/off `flag`, on when given or when its environment variable is 1, true or yes."""
    name = env_name(flag)
    group.add_argument(
        flag,
        action="store_true",
        default=os.environ.get(name, "").strip().lower() in ENV_TRUE,
        help=f"{help_text} [env {name}=1]",
    )


def _naming_env(converter: Converter, name: str, from_env: str | None) -> Converter:
    def convert(value: str) -> Any:
        try:
            return converter(value)
        except argparse.ArgumentTypeError as exc:
            if from_env is None or value != from_env:
                raise
            raise argparse.ArgumentTypeError(f"{exc} [env {name}]") from None

    return convert


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {value!r}")
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value!r}")
    if number > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS} seconds, not {value!r}")
    return number


def _integer(value: str, kind: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {kind}, not {value!r}") from None


def positive_int(value: str) -> int:
    if _integer(value, "a whole number") < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value!r}")
    return int(value)


def port(value: str) -> int:
    if not 0 <= _integer(value, "a port number") <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0 picks a free port), not {value!r}")
    return int(value)


def choice(*choices: str) -> Converter:
    def convert(value: str) -> str:
        if value not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return convert


def grpc_target(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError(f"must be host:port or unix:path, not {value!r}")
    return value.strip()


def comma_separated(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(value: str) -> float:
    """A length of time: a number and a unit (90s, 30m, 12h, 7d), or 0."""
    text = value.strip()
    if text == "0":
        return 0.0
    match = DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"must be a number and a unit (s, m, h, d) such as 30d or 12h, or 0; not {value!r}"
        )
    return float(match[1]) * SECONDS_PER_UNIT[match[2]]


NO_LIMIT = ("none", "0")


def optional_duration(value: str) -> float | None:
    """A limit in time: a number of seconds or a number and a unit (90s, 30m, 2h, 1d); none (or 0) for no limit."""
    text = value.strip().lower()
    if text in NO_LIMIT:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = duration_seconds(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be seconds or a number and a unit (s, m, h, d) such as 90s, 30m or 2h, or none; not {value!r}"
            ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (or none), not {value!r}")
    return seconds
