"""The one definition of the key: its parts, their names at each boundary, and what a valid part is."""

from __future__ import annotations

import dataclasses
import re

import pytest

from fabric_jobs.keys import FILTER_PARTS, KEY_FIELDS, PATH_PARTS, is_name, is_uuid
from fabric_jobs.rest_bridge.jobs import INSTANCE_PATH
from fabric_jobs.server.model import JobKey
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import job_service_pb2 as pb

UUID = "5f8c7e2a-3b1d-4c6e-9a0f-1e2d3c4b2d57"


@pytest.mark.parametrize("value", [UUID, UUID.upper()])
def test_uuids(value: str) -> None:
    assert is_uuid(value)


@pytest.mark.parametrize(
    "value", ["", UUID + "\n", "\n" + UUID, UUID + " ", UUID[:-1], UUID + "0", "{" + UUID + "}", UUID.replace("-", "")]
)
def test_not_uuids(value: str) -> None:
    assert not is_uuid(value)


@pytest.mark.parametrize("value", ["a", "0", "Contoso.Finance_Analytics-1", "a" * 256, "x.", "x-"])
def test_names(value: str) -> None:
    assert is_name(value)


@pytest.mark.parametrize("value", ["", "a" * 257, ".a", "_a", "-a", "a b", "a/b", "a\n", "\na", "é"])
def test_not_names(value: str) -> None:
    assert not is_name(value)


def test_the_key_table_names_the_fields_of_every_message_and_value_that_holds_a_key() -> None:
    assert tuple(field.name for field in dataclasses.fields(JobKey)) == KEY_FIELDS
    assert tuple(field.name for field in pb.JobInstanceKey.DESCRIPTOR.fields) == KEY_FIELDS
    filter_fields = {field.name for field in admin_pb.JobInstanceFilter.DESCRIPTOR.fields}
    assert set(KEY_FIELDS) <= filter_fields


def test_the_path_parts_are_fabrics_path_parameters_in_order() -> None:
    assert re.findall(r"\{(\w+)\}", INSTANCE_PATH) == [part.json_name for part in PATH_PARTS]


def test_each_filter_part_is_a_cli_option_of_jobs_list() -> None:
    options = {part.option for part in FILTER_PARTS}
    assert options == {"--tenant", "--workspace", "--item-type", "--item", "--job-type"}
    assert [part.dest for part in FILTER_PARTS] == ["tenant", "workspace", "item_type", "item", "job_type"]


def test_a_key_survives_its_text() -> None:
    key = JobKey(UUID, UUID, "Contoso.Item", UUID, "run", UUID)
    assert JobKey.from_text(key.to_text()) == key
    assert key.fields() == dict(zip(KEY_FIELDS, (UUID, UUID, "Contoso.Item", UUID, "run", UUID), strict=True))
    assert JobKey.from_text(UUID) is None
