"""`fabric-jobs manifest`: the <JobScheduler> element of Fabric's item manifest, for each item type of a registry.

Fabric's schema (ItemDefinition.xsd) names an item type Org.Workload.Item (three parts, at most 64
characters, the first two the workload's name, at most 32) and a job type {itemType}.{JobName} (four parts,
at most 96); each part is letters, digits and '-'. Fabric sends that full name as jobType, so a job type
registered under another name could never be called: it is left out, with a warning.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from fabric_jobs.registry import JobRegistry

_PART = r"[a-zA-Z0-9-]+"
ITEM_TYPE_PATTERN = re.compile(rf"{_PART}\.{_PART}\.{_PART}")
JOB_TYPE_PATTERN = re.compile(rf"{_PART}\.{_PART}\.{_PART}\.{_PART}")
MAX_WORKLOAD_NAME = 32
MAX_ITEM_TYPE = 64
MAX_JOB_TYPE = 96


@dataclass
class Manifest:
    """One <JobScheduler> element per item type that has a job type Fabric can call, and why others were left out."""

    job_schedulers: dict[str, ET.Element] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = []
        for item_type, element in self.job_schedulers.items():
            ET.indent(element)
            xml = ET.tostring(element, encoding="unicode", short_empty_elements=True)
            parts.append(f'<!-- Item TypeName="{item_type}" -->\n{xml}\n')
        return "\n".join(parts)


def item_type_problem(item_type: str) -> str | None:
    if ITEM_TYPE_PATTERN.fullmatch(item_type) is None:
        return "Fabric names an item type Org.Workload.ItemType: three parts of letters, digits and '-'"
    if len(item_type) > MAX_ITEM_TYPE:
        return f"Fabric takes item type names of at most {MAX_ITEM_TYPE} characters"
    if len(item_type.rsplit(".", 1)[0]) > MAX_WORKLOAD_NAME:
        return f"Fabric takes workload names (the first two parts) of at most {MAX_WORKLOAD_NAME} characters"
    return None


def job_type_problem(item_type: str, job_type: str) -> str | None:
    if not job_type.startswith(item_type + ".") or JOB_TYPE_PATTERN.fullmatch(job_type) is None:
        suggestion = f"{item_type}.{job_type.rsplit('.', 1)[-1]}"
        return (
            f"Fabric names a job type {{itemType}}.{{JobName}} (four parts of letters, digits and '-') and sends "
            f"that name as jobType, e.g. {suggestion}"
        )
    if len(job_type) > MAX_JOB_TYPE:
        return f"Fabric takes job type names of at most {MAX_JOB_TYPE} characters"
    return None


def build(registry: JobRegistry) -> Manifest:
    manifest = Manifest()
    names: dict[str, list[str]] = {}
    for registered in registry.job_types():
        names.setdefault(registered.item_type, []).append(registered.job_type)
    for item_type, job_types in names.items():
        problem = item_type_problem(item_type)
        if problem is not None:
            manifest.warnings.append(f"item type {item_type!r} left out with its job types: {problem}")
            continue
        valid = []
        for job_type in job_types:
            problem = job_type_problem(item_type, job_type)
            if problem is None:
                valid.append(job_type)
            else:
                manifest.warnings.append(f"job type {job_type!r} of item type {item_type!r} left out: {problem}")
        if valid:
            manifest.job_schedulers[item_type] = _job_scheduler(registry, item_type, valid)
    return manifest


def _job_scheduler(registry: JobRegistry, item_type: str, job_types: list[str]) -> ET.Element:
    on_demand, scheduled = registry.deduplication(item_type)
    scheduler = ET.Element("JobScheduler")
    ET.SubElement(scheduler, "OnDemandJobDeduplicateOptions").text = on_demand
    ET.SubElement(scheduler, "ScheduledJobDeduplicateOptions").text = scheduled
    item_job_types = ET.SubElement(scheduler, "ItemJobTypes")
    for job_type in job_types:
        ET.SubElement(item_job_types, "ItemJobType", Name=job_type)
    return scheduler


def print_manifest(registry: JobRegistry) -> int:
    """Print the elements on stdout and each warning on stderr; 1 when no job type is left to print."""
    manifest = build(registry)
    for warning in manifest.warnings:
        print(f"fabric-jobs manifest: warning: {warning}", file=sys.stderr)
    if not manifest.job_schedulers:
        print("fabric-jobs manifest: error: no job type of the registry has a name Fabric accepts", file=sys.stderr)
        return 1
    sys.stdout.write(manifest.text())
    return 0
