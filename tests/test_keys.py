"""The one definition of a valid key part, shared by the JobService and the REST bridge."""

from __future__ import annotations

import pytest

from fabric_jobs.keys import is_name, is_uuid

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
