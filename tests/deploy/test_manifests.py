"""deploy/kubernetes validates against Kubernetes' schemas (kubernetes-validate carries them offline), and
every option the manifests and deploy/compose.yaml give `fabric-jobs`, on its command line or as a
FABRIC_JOBS_<OPTION> variable, is an option of that command: they cannot drift from the CLI."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fabric_jobs.cli.option_kit import ENV_PREFIX, env_name
from fabric_jobs.cli.options import build_parser
from tests.processes import REPOSITORY_ROOT

KUBERNETES = REPOSITORY_ROOT / "deploy" / "kubernetes"
COMPOSE_FILE = REPOSITORY_ROOT / "deploy" / "compose.yaml"
MANIFESTS = sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")
IMAGE = "fabric-jobs"
"""The image name the manifests use; kustomization.yaml's `images` sets where it comes from."""
NEEDS_JOBS = frozenset({"serve", "grpc", "worker"})
"""The commands that load a registry: each is given --jobs explicitly, never the default."""


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_every_manifest_validates_against_the_current_kubernetes_schemas(manifest: Path) -> None:
    version = kubernetes_validate.latest_version()
    for document in documents(manifest):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    (kustomization,) = documents(KUBERNETES / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [path.name for path in MANIFESTS]
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]


@dataclass
class Invocation:
    """One `fabric-jobs` command as a deployment file runs it."""

    where: str
    args: list[str]
    env: set[str] = field(default_factory=set)
    """Names of the FABRIC_JOBS_* variables it is given."""


def _config_maps() -> dict[str, dict[str, str]]:
    return {
        document["metadata"]["name"]: document["data"]
        for path in MANIFESTS
        for document in documents(path)
        if document["kind"] == "ConfigMap"
    }


def kubernetes_invocations() -> Iterator[Invocation]:
    config_maps = _config_maps()
    for path in MANIFESTS:
        for document in documents(path):
            pod = document.get("spec", {}).get("template", {}).get("spec")
            if document["kind"] not in ("Deployment", "Job") or pod is None:
                continue
            for container in pod["containers"]:
                assert container["image"] == IMAGE, f"{path.name}: {container['name']}"
                env = {variable["name"] for variable in container.get("env", [])}
                for source in container.get("envFrom", []):
                    env |= set(config_maps[source["configMapRef"]["name"]])
                yield Invocation(f"{path.name}: {document['metadata']['name']}", container["args"], env)


def compose_invocations() -> Iterator[Invocation]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    for name, service in compose["services"].items():
        if service["image"].startswith("${FABRIC_JOBS_IMAGE"):
            yield Invocation(f"compose.yaml: {name}", service["command"], set(service.get("environment", {})))


INVOCATIONS = [*kubernetes_invocations(), *compose_invocations()]


def _subcommand(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subparser: argparse.ArgumentParser = action.choices[command]
            return subparser
    raise AssertionError("fabric-jobs has no subcommands")


def test_the_deployment_files_run_every_process_of_scaling_out() -> None:
    for commands in (
        {invocation.args[0] for invocation in kubernetes_invocations()},
        {invocation.args[0] for invocation in compose_invocations()},
    ):
        assert commands == {"migrate", "grpc", "rest", "worker"}


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=[invocation.where for invocation in INVOCATIONS])
def test_every_option_given_to_fabric_jobs_is_an_option_of_its_command(invocation: Invocation) -> None:
    command, *arguments = invocation.args
    subcommand = _subcommand(command)
    flags = {argument.split("=", 1)[0] for argument in arguments if argument.startswith("--")}
    options = set(subcommand._option_string_actions)
    assert flags <= options, f"not options of `fabric-jobs {command}`: {sorted(flags - options)}"
    variables = {env_name(option) for option in options if option.startswith("--")}
    ours = {name for name in invocation.env if name.startswith(ENV_PREFIX)}
    assert ours <= variables, f"not variables of `fabric-jobs {command}`: {sorted(ours - variables)}"
    build_parser().parse_args(invocation.args)  # the values too: exits 2 on one the command refuses
    if command in NEEDS_JOBS:
        assert "--jobs" in flags, f"{invocation.where}: `{command}` without --jobs"
