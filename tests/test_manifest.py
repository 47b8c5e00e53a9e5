"""`fabric-jobs manifest`: each <JobScheduler> it prints is valid in Fabric's item manifest schema."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from fabric_jobs import demo
from fabric_jobs.cli import main
from fabric_jobs.registry import JobRegistry
from tests import manifest_jobs
from tests.manifest_jobs import handler
from tests.processes import REPOSITORY_ROOT, clean_env, command

SCHEMA_DIR = REPOSITORY_ROOT / "docs" / "fabric-item-manifest"
FRAGMENT = re.compile(r'<!-- Item TypeName="([^"]+)" -->\n(<JobScheduler>.*?</JobScheduler>)\n', re.DOTALL)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> xmlschema.XMLSchema:
    """Microsoft's schema, read with each `(?:` (a .NET regex group, not XSD's) as `(`, which matches the same text."""
    copy = tmp_path_factory.mktemp("schema")
    for path in SCHEMA_DIR.glob("*.xsd"):
        (copy / path.name).write_text(path.read_text("utf-8").replace("(?:", "("), "utf-8")
    return xmlschema.XMLSchema(str(copy / "ItemDefinition.xsd"))


def fragments(stdout: str) -> dict[str, str]:
    """Each printed <JobScheduler>, by the item type in the comment above it; nothing else may be printed."""
    found = {match.group(1): match.group(2) for match in FRAGMENT.finditer(stdout)}
    assert FRAGMENT.sub("", stdout).strip() == "", stdout
    return found


def in_microsofts_sample(item_type: str, job_scheduler: str) -> str:
    """Item1.xml, Microsoft's sample item manifest, for `item_type` and with `job_scheduler` in place of its own."""
    sample = (SCHEMA_DIR / "Item1.xml").read_text("utf-8")
    sample = sample.replace('TypeName="Org.WorkloadSample.SampleWorkloadItem"', f'TypeName="{item_type}"')
    sample = sample.replace('WorkloadName="Org.WorkloadSample"', f'WorkloadName="{item_type.rsplit(".", 1)[0]}"')
    replaced, count = re.subn(r"<JobScheduler>.*</JobScheduler>", lambda _: job_scheduler, sample, flags=re.DOTALL)
    assert count == 1
    return replaced


def summary(job_scheduler: str) -> tuple[str | None, str | None, list[str]]:
    element = ET.fromstring(job_scheduler)
    names = [job.attrib["Name"] for job in element.iterfind("ItemJobTypes/ItemJobType")]
    return element.findtext("OnDemandJobDeduplicateOptions"), element.findtext("ScheduledJobDeduplicateOptions"), names


def test_microsofts_sample_is_valid_and_a_short_job_type_name_is_not(schema: xmlschema.XMLSchema) -> None:
    sample = (SCHEMA_DIR / "Item1.xml").read_text("utf-8")
    schema.validate(sample)
    short = sample.replace("Org.WorkloadSample.SampleWorkloadItem.InstantJob", "InstantJob")
    assert not schema.is_valid(short)


def test_the_demo_manifest_is_valid_and_leaves_out_the_short_name(schema: xmlschema.XMLSchema) -> None:
    result = subprocess.run(
        command("manifest"), capture_output=True, text=True, timeout=30, cwd=REPOSITORY_ROOT, env=clean_env()
    )

    assert result.returncode == 0, result.stderr
    printed = fragments(result.stdout)
    assert list(printed) == [demo.ITEM_TYPE]
    assert summary(printed[demo.ITEM_TYPE]) == ("PerItem", "PerItem", [demo.FULL_JOB_TYPE])
    schema.validate(in_microsofts_sample(demo.ITEM_TYPE, printed[demo.ITEM_TYPE]))
    [warning] = result.stderr.splitlines()
    assert warning.startswith("fabric-jobs manifest: warning: ")
    assert f"'{demo.JOB_TYPE}'" in warning


def test_names_fabric_would_reject_are_left_out_each_with_a_warning(
    schema: xmlschema.XMLSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "--jobs", "tests.manifest_jobs:registry"]) == 0

    out, err = capsys.readouterr()
    printed = fragments(out)
    forecast, report = manifest_jobs.FORECAST, manifest_jobs.REPORT
    assert list(printed) == [forecast, report]
    assert summary(printed[forecast]) == (
        "None",
        "None",
        [f"{forecast}.CalculateForecast", f"{forecast}.Export-Report2"],
    )
    assert summary(printed[report]) == ("PerItem", "PerUser", [f"{report}.Refresh"])
    for item_type, job_scheduler in printed.items():
        schema.validate(in_microsofts_sample(item_type, job_scheduler))
    warnings = err.splitlines()
    assert len(warnings) == len(manifest_jobs.REJECTED)
    for line, name in zip(warnings, manifest_jobs.REJECTED, strict=True):
        assert line.startswith("fabric-jobs manifest: warning: ")
        assert f"'{name}'" in line


def test_nothing_left_is_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--jobs", "tests.manifest_jobs:nothing_valid"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert "'calculateForecast'" in err
    assert "'Short.Name'" in err
    assert err.splitlines()[-1].startswith("fabric-jobs manifest: error: ")


def test_a_registry_that_cannot_be_loaded_is_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--jobs", "tests.no_such_module:registry"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("fabric-jobs manifest: error: --jobs")
    assert len(err.splitlines()) == 1


def test_jobs_may_come_from_the_environment() -> None:
    result = subprocess.run(
        command("manifest"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPOSITORY_ROOT,
        env=clean_env(FABRIC_JOBS_JOBS="tests.manifest_jobs:nothing_valid"),
    )
    assert result.returncode == 1
    assert result.stdout == ""


def test_deduplication_takes_only_the_schemas_values() -> None:
    registry = JobRegistry()
    with pytest.raises(ValueError, match="PerItem"):
        registry.add("A.B.C", "A.B.C.D", handler, deduplication="perItem")  # type: ignore[arg-type]


def test_registrations_of_one_item_type_must_agree_on_deduplication() -> None:
    registry = JobRegistry()
    registry.add("A.B.C", "A.B.C.One", handler, deduplication="PerUser")
    registry.add("A.B.C", "A.B.C.Two", handler)
    with pytest.raises(ValueError, match=r"A\.B\.C\.Three"):
        registry.add("A.B.C", "A.B.C.Three", handler, deduplication="None")
    with pytest.raises(ValueError, match=r"A\.B\.C\.Four"):
        registry.add("A.B.C", "A.B.C.Four", handler, scheduled_deduplication="PerItem")
    registry.add("A.B.C", "A.B.C.Five", handler, scheduled_deduplication="PerUser")
    assert registry.deduplication("A.B.C") == ("PerUser", "PerUser")
    assert registry.deduplication("Other.Item.Type") == ("PerItem", "PerItem")
