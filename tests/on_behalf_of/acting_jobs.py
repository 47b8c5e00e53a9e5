"""Job types that act for their user, for tests through real `fabric-jobs` processes.

Each handler writes what it got into the file its payload names (`report`): the caller and the tokens, or the
TokenUnavailable it saw. With `wait_for` in the payload it first waits until that file exists (TwoScopes with
`token_first` gets a token before it waits).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fabric_jobs import JobContext, JobRegistry, TokenUnavailable

ITEM_TYPE = "Contoso.Acting"
STORAGE = "https://storage.azure.com/.default"
FABRIC = "https://api.fabric.microsoft.com/.default"
WAIT_SECONDS = 60.0

registry = JobRegistry()


def _report(ctx: JobContext, **facts: Any) -> None:
    caller = None if ctx.caller is None else asdict(ctx.caller)
    Path(ctx.payload["report"]).write_text(json.dumps({"caller": caller, **facts}))


def _wait_for_file(ctx: JobContext) -> None:
    """Until the payload's `wait_for` file exists (at once without one), the job is cancelled, or a minute passed."""
    if "wait_for" not in ctx.payload:
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while not Path(ctx.payload["wait_for"]).exists() and time.monotonic() < deadline and not ctx.cancellation.cancelled:
        time.sleep(0.05)


async def _wait(ctx: JobContext) -> None:
    await asyncio.to_thread(_wait_for_file, ctx)


@registry.job(ITEM_TYPE, f"{ITEM_TYPE}.TwoScopes", user_scopes=[STORAGE])
async def two_scopes(ctx: JobContext) -> None:
    if ctx.payload.get("token_first"):
        await ctx.access_token(FABRIC)
    await _wait(ctx)
    storage = await ctx.access_token(STORAGE)
    fabric = (await ctx.credential.get_token(FABRIC)).token
    _report(ctx, tokens={STORAGE: storage, FABRIC: fabric})


@registry.job(ITEM_TYPE, f"{ITEM_TYPE}.PlainTwoScopes", user_scopes=[STORAGE])
def plain_two_scopes(ctx: JobContext) -> None:
    storage = ctx.credential.get_token(STORAGE).token
    fabric = ctx.credential.get_token(FABRIC).token
    _report(ctx, tokens={STORAGE: storage, FABRIC: fabric})


@registry.job(ITEM_TYPE, f"{ITEM_TYPE}.Unhandled", user_scopes=[STORAGE])
async def unhandled(ctx: JobContext) -> None:
    await _wait(ctx)
    _report(ctx, tokens={FABRIC: await ctx.access_token(FABRIC)})


@registry.job(ITEM_TYPE, f"{ITEM_TYPE}.NoScopes")
async def no_scopes(ctx: JobContext) -> None:
    try:
        await ctx.access_token(STORAGE)
    except TokenUnavailable as exc:
        _report(ctx, error=exc.error, description=exc.description, is_permanent=exc.is_permanent)
        return
    _report(ctx, error=None)


@registry.job(ITEM_TYPE, f"{ITEM_TYPE}.Blocker")
def blocker(ctx: JobContext) -> None:
    """Holds a thread (of --max-threads 1) until its `wait_for` file exists, so that later plain jobs start late."""
    _wait_for_file(ctx)
