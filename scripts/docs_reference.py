"""The documentation's reference pages, made from the code at build time (a MkDocs hook, see mkdocs.yml).

A page holds a marker line `<!-- reference: NAME -->`; the hook replaces it with what the generator of NAME
makes: `cli` from the `fabric-jobs` command's own parser, `grpc` from the `.proto` files (through `buf build`,
which keeps their comments), `metrics` from the metrics this package registers. Nothing is copied by hand, so
a page cannot drift from the code: `mkdocs build --strict` in CI renders it from the code of that commit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- reference: (\w+) -->$", re.MULTILINE)
HELP_WIDTH = "100"


def _commands(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def cli_reference() -> str:
    """Every command and option of `fabric-jobs`, as its own `--help` prints them, and a table of each option."""
    from fabric_jobs.cli.option_kit import env_name
    from fabric_jobs.cli.options import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps to the terminal; the page must not depend on it
    try:
        parser = build_parser()
        sections: list[str] = []
        for name, command in _commands(parser, "fabric-jobs"):
            rows = []
            for action in command._actions:
                if not action.option_strings or isinstance(action, argparse._HelpAction | argparse._VersionAction):
                    continue
                flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
                long_flag = next(flag for flag in action.option_strings if flag.startswith("--"))
                default = "" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
                rows.append(f"| {flags} | `{env_name(long_flag)}` | {default} |")
            table = ["| option | environment variable | default |", "| --- | --- | --- |", *rows] if rows else []
            sections.append(
                "\n".join([f"## `{name}`", "", "```text", command.format_help().rstrip(), "```", "", *table, ""])
            )
        return "\n".join(sections)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _buf() -> str:
    found = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    if found is None:
        raise RuntimeError("buf is not installed (pip install -e '.[dev]' brings it)")
    return found


def _file_descriptors() -> list[descriptor_pb2.FileDescriptorProto]:
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch, "image.binpb")
        subprocess.run([_buf(), "build", "-o", str(image)], cwd=ROOT, check=True)
        files = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()).file
    return [file for file in files if file.package.startswith("fabric_jobs.")]


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(location.path): " ".join(location.leading_comments.split())
        for location in file.source_code_info.location
        if location.leading_comments.strip()
    }


_FIELD_TYPES = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


def _short(type_name: str, package: str) -> str:
    """A message or enum type's name, without the package when it is the file's own."""
    return type_name.lstrip(".").removeprefix(f"{package}.")


def _field_type(field: descriptor_pb2.FieldDescriptorProto, package: str) -> str:
    name = _short(field.type_name, package) if field.type_name else _FIELD_TYPES[field.type]
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {name}"
    return f"optional {name}" if field.proto3_optional else name


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def grpc_reference() -> str:
    """The services, methods, messages and enums of the `fabric_jobs.*` proto packages, with their comments."""
    # Paths into FileDescriptorProto (descriptor.proto field numbers): 4 message_type, 5 enum_type, 6 service;
    # within a message 2 field; within an enum 2 value; within a service 2 method.
    sections: list[str] = []
    for file in _file_descriptors():
        comments = _comments(file)
        sections += [f"## `{file.name}`", "", f"Package `{file.package}`.", ""]
        for s, service in enumerate(file.service):
            sections += [f"### service `{service.name}`", "", comments.get((6, s), ""), ""]
            sections += ["| method | request | response | |", "| --- | --- | --- | --- |"]
            for m, method in enumerate(service.method):
                streaming = "stream " if method.server_streaming else ""
                request, response = _short(method.input_type, file.package), _short(method.output_type, file.package)
                comment = _cell(comments.get((6, s, 2, m), ""))
                sections.append(f"| `{method.name}` | `{request}` | {streaming}`{response}` | {comment} |")
            sections.append("")
        for i, message in enumerate(file.message_type):
            sections += [f"### message `{message.name}`", "", comments.get((4, i), ""), ""]
            if message.field:
                sections += ["| field | number | type | |", "| --- | --- | --- | --- |"]
                for f, field in enumerate(message.field):
                    deprecated = " **deprecated**" if field.options.deprecated else ""
                    sections.append(
                        f"| `{field.name}` | {field.number} | `{_field_type(field, file.package)}` |"
                        f" {_cell(comments.get((4, i, 2, f), ''))}{deprecated} |"
                    )
                sections.append("")
        for e, enum in enumerate(file.enum_type):
            sections += [f"### enum `{enum.name}`", "", comments.get((5, e), ""), ""]
            sections += ["| value | number | |", "| --- | --- | --- |"]
            for v, value in enumerate(enum.value):
                sections.append(f"| `{value.name}` | {value.number} | {_cell(comments.get((5, e, 2, v), ''))} |")
            sections.append("")
    return "\n".join(sections)


def metrics_reference() -> str:
    """Every metric fabric-jobs registers (beside prometheus-client's process_* and python_*)."""
    from prometheus_client.metrics import MetricWrapperBase

    from fabric_jobs.observability import metrics
    from fabric_jobs.observability.request_stats import RequestStats

    rows: list[tuple[str, str, str, str]] = []
    for value in vars(metrics).values():
        if isinstance(value, RequestStats):
            counter, histogram = value.families()
            rows.append((f"{counter[0]}_total", "counter", ", ".join(value.labels), counter[1]))
            rows.append((histogram[0], "histogram", value.labels[0], histogram[1]))
        elif isinstance(value, MetricWrapperBase):
            suffix = "_total" if value._type == "counter" else ""
            kind = value._type or ""
            rows.append((f"{value._name}{suffix}", kind, ", ".join(value._labelnames), value._documentation))
    lines = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{name}` | {kind} | {labels} | {_cell(text)} |" for name, kind, labels, text in sorted(rows)]
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "grpc": grpc_reference,
    "metrics": metrics_reference,
}


def render(markdown: str) -> str:
    """The page with each marker replaced by its generated reference; an unknown marker is an error."""

    def replace(match: re.Match[str]) -> str:
        generator = GENERATORS.get(match[1])
        if generator is None:
            raise ValueError(f"unknown reference marker {match[0]!r}; known: {', '.join(GENERATORS)}")
        return generator()

    return re.sub(r"\n{3,}", "\n\n", MARKER.sub(replace, markdown))


def on_config(config: Any) -> Any:
    """MkDocs hook: the site is named with the package's version, so every page shows which release it documents."""
    from fabric_jobs import __version__

    config["site_name"] = f"fabric-jobs {__version__}"
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: see the module's docstring."""
    return render(markdown)
