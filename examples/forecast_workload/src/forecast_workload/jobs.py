"""The job types of the Contoso.Forecasting.SalesModel item, and their registry.

- `...SalesModel.Forecast` (async): extends the item's sales history by a linear trend, one step every
  `stepSeconds`, and writes the forecast as JSON. A cancel stops it between steps; nothing is written.
- `...SalesModel.Export` (a plain function, run in a thread): writes a finished forecast as CSV, one row
  every `pauseSeconds`. A cancel stops it between rows and removes the partial file.

- `...SalesModel.ListFiles` (a plain function): lists the item's `Files` folder in OneLake as the user who
  asked (azure-storage-file-datalake with ctx.credential: on-behalf-of tokens) and writes the listing as JSON.

Serve them with `fabric-jobs serve --jobs forecast_workload.jobs:registry`; results go to the
directory named by FORECAST_OUTPUT_DIR (default ./forecasts).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import math
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.storage.filedatalake import DataLakeServiceClient
from fabric_jobs import ErrorSource, InvalidPayload, JobContext, JobFailed, JobRegistry

from forecast_workload.forecasting import extend

ITEM_TYPE = "Contoso.Forecasting.SalesModel"
FORECAST = f"{ITEM_TYPE}.Forecast"
EXPORT = f"{ITEM_TYPE}.Export"
LIST_FILES = f"{ITEM_TYPE}.ListFiles"
ONELAKE_URL = "https://onelake.dfs.fabric.microsoft.com"
ONELAKE_SCOPE = "https://storage.azure.com/.default"
MAX_HORIZON = 365
MAX_SECONDS = 3600.0


def _number(payload: Mapping[str, Any], field: str, default: float, low: float, high: float) -> float:
    value = payload.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidPayload(field, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _whole_number(payload: Mapping[str, Any], field: str, low: int, high: int) -> int:
    """An integer; 3 and 3.0 alike (JSON has one kind of number)."""
    value = payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not low <= value <= high:
        raise InvalidPayload(field, f"must be a whole number from {low} to {high}")
    return int(value)


def validate_forecast(payload: Mapping[str, Any]) -> None:
    history = payload.get("history")
    if not isinstance(history, list) or len(history) < 2:
        raise InvalidPayload("history", "must be a list of at least two numbers")
    for value in history:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidPayload("history", "must hold numbers only")
    _whole_number(payload, "horizon", 1, MAX_HORIZON)
    _number(payload, "stepSeconds", 0, 0, MAX_SECONDS)


def validate_export(payload: Mapping[str, Any]) -> None:
    forecast = payload.get("forecastJobInstanceId")
    try:
        uuid.UUID(str(forecast))
    except ValueError:
        raise InvalidPayload("forecastJobInstanceId", "must be the UUID of a Forecast job instance") from None
    _number(payload, "pauseSeconds", 0, 0, MAX_SECONDS)


def _file_id(job_instance_id: object) -> str:
    """A job instance id as a file name: the canonical UUID, never a path."""
    return str(uuid.UUID(str(job_instance_id)))


def _write_json(path: Path, values: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"forecast": values}))


def _list_files(service: DataLakeServiceClient, workspace_id: str, item_id: str) -> list[dict[str, Any]]:
    """The files and folders under the item's Files folder, as OneLake lists them."""
    workspace = service.get_file_system_client(workspace_id)
    return [
        {"name": path.name, "isDirectory": bool(path.is_directory), "size": path.content_length or 0}
        for path in workspace.get_paths(path=f"{item_id}/Files", recursive=True)
    ]


def create_registry(output_dir: Path, *, onelake_url: str = ONELAKE_URL, onelake_ca: str | None = None) -> JobRegistry:
    """The workload's job types, writing their results under `output_dir`; OneLake at `onelake_url`, its TLS
    certificate checked against `onelake_ca` (default: the system's CAs)."""
    registry = JobRegistry()

    @registry.job(ITEM_TYPE, LIST_FILES, user_scopes=[ONELAKE_SCOPE])
    def list_files(ctx: JobContext) -> None:
        verify: dict[str, Any] = {} if onelake_ca is None else {"connection_verify": onelake_ca}
        with DataLakeServiceClient(onelake_url, credential=ctx.credential, **verify) as service:
            try:
                listing = _list_files(service, ctx.key.workspace_id, ctx.key.item_id)
            except HttpResponseError as exc:
                raise JobFailed(
                    f"OneLake refused to list the item's files ({exc.status_code}).",
                    error_code="OneLakeRefused",
                    source=ErrorSource.EXTERNAL,
                    is_permanent=exc.status_code in (401, 403, 404),
                ) from None
        target = output_dir / f"{_file_id(ctx.key.job_instance_id)}.files.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"files": listing}))

    @registry.job(ITEM_TYPE, FORECAST, validate=validate_forecast)
    async def forecast(ctx: JobContext) -> None:
        history = [float(value) for value in ctx.payload["history"]]
        horizon = int(ctx.payload["horizon"])
        step_seconds = float(ctx.payload.get("stepSeconds", 0))
        values: list[float] = []
        for step, value in enumerate(extend(history, horizon), start=1):
            if value < 0:
                raise JobFailed(
                    f"The forecast falls below zero at step {step}: the sales history declines too fast.",
                    error_code="NegativeForecast",
                    message_parameters=(str(step),),
                )
            values.append(value)
            if step_seconds:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.cancellation.wait(), step_seconds)
            if ctx.cancellation.cancelled:
                ctx.logger.info("forecast %s cancelled after %d of %d steps", ctx.key.job_instance_id, step, horizon)
                return
        await asyncio.to_thread(_write_json, output_dir / f"{_file_id(ctx.key.job_instance_id)}.json", values)

    @registry.job(ITEM_TYPE, EXPORT, validate=validate_export)
    def export(ctx: JobContext) -> None:
        source = output_dir / f"{_file_id(ctx.payload['forecastJobInstanceId'])}.json"
        if not source.is_file():
            raise JobFailed(
                "There is no finished forecast with this id.",
                error_code="ForecastNotFound",
                message_parameters=(str(ctx.payload["forecastJobInstanceId"]),),
            )
        values = json.loads(source.read_text())["forecast"]
        pause = float(ctx.payload.get("pauseSeconds", 0))
        target = output_dir / f"{_file_id(ctx.key.job_instance_id)}.csv"
        with target.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["step", "sales"])
            for step, value in enumerate(values, start=1):
                writer.writerow([step, f"{value:.2f}"])
                if ctx.cancellation.wait_blocking(pause):
                    break
        if ctx.cancellation.cancelled:
            target.unlink()
            ctx.logger.info("export %s cancelled; partial file removed", ctx.key.job_instance_id)

    return registry


registry = create_registry(Path(os.environ.get("FORECAST_OUTPUT_DIR", "forecasts")))
