"""The version of fabric-jobs, set here and nowhere else (pyproject.toml reads it; see CHANGELOG.md)."""

__version__ = "0.4.0"
