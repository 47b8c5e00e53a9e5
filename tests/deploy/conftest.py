"""The deployment tests' fixture: podman and the image (see containers.py)."""

from __future__ import annotations

import pytest

from tests.deploy.containers import Podman, prepared_podman


@pytest.fixture(scope="session")
def podman() -> Podman:
    return prepared_podman()
