"""Credential material at rest: sealed with the operator's key, bound to its job, rotatable."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from fabric_jobs.on_behalf_of.sealing import KeyFileError, Sealer, UnsealError, read_key_file
from fabric_jobs.server.model import JobKey

KEY = JobKey(
    "7c3f1e2d-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
    "11111111-1111-4111-8111-111111111111",
    "Contoso.Item",
    "22222222-2222-4222-8222-222222222222",
    "Contoso.Item.Job",
    "33333333-3333-4333-8333-333333333333",
)
SECRET = b'{"refresh_token": "rt-that-must-not-show"}'


def key_file(path: Path, size: int = 32) -> Path:
    path.write_text(base64.b64encode(os.urandom(size)).decode() + "\n")
    return path


def test_sealed_material_holds_no_plaintext_and_opens_only_for_its_job(tmp_path: Path) -> None:
    sealer = Sealer(read_key_file(key_file(tmp_path / "key")))

    sealed = sealer.seal(KEY, SECRET)

    assert b"rt-that-must-not-show" not in sealed
    assert sealer.open(KEY, sealed) == SECRET
    other_job = JobKey(*[*KEY.to_text().split("/")[:5], "44444444-4444-4444-8444-444444444444"])
    with pytest.raises(UnsealError, match="does not belong to this job"):
        sealer.open(other_job, sealed)
    with pytest.raises(UnsealError, match="altered"):
        sealer.open(KEY, sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_rotated_key_still_opens_what_the_old_one_sealed_and_a_wrong_key_says_so(tmp_path: Path) -> None:
    old = read_key_file(key_file(tmp_path / "old"))
    new = read_key_file(key_file(tmp_path / "new"))
    sealed_before = Sealer(old).seal(KEY, SECRET)

    rotating = Sealer(new, old)

    assert rotating.open(KEY, sealed_before) == SECRET
    assert Sealer(new).open(KEY, rotating.seal(KEY, SECRET)) == SECRET
    with pytest.raises(UnsealError, match="key this process does not have"):
        Sealer(new).open(KEY, sealed_before)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (base64.b64encode(b"x" * 16).decode(), "holds 16 bytes, needs 32"),
        ("not base64!", "not base64"),
        (None, "No such file"),
    ],
)
def test_a_bad_key_file_is_one_line_naming_it(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "token.key"
    if content is not None:
        path.write_text(content)

    with pytest.raises(KeyFileError, match=message) as raised:
        read_key_file(path)

    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)
