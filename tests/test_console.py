"""The web console in a real browser: headless Chromium (Debian's package) driven by Playwright, against a live
`fabric-jobs serve --dev`; and the refusal to serve it off loopback without a token."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.processes import Serve, clean_env, command, kill_if_running, launch

CHROMIUM = os.environ.get("FABRIC_JOBS_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TENANT = "7c1d1a1e-0000-4000-8000-0000000000c0"
WORKSPACE = "e5ef604d-e14f-4a59-9133-75d5a0cb9334"
ITEM = "b14cb7e7-d346-4751-9cfd-8c2767d53111"
ITEM_TYPE = "Contoso.FinanceAnalytics.Forecast"
JOB_TYPE = "calculateForecast"
TOKEN = "console-token-in-the-browser"
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def start(tmp_path: Path, *extra: str) -> tuple[Serve, str]:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    serve = launch(
        ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--admin-port", "0", "--database", database, *extra],
        grpc=True,
        rest=True,
        started="web console on",
    )
    match = re.search(r"web console on (http://\S+/console)", serve.text())
    assert match is not None, serve.text()
    return serve, match[1]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Serve, str]]:
    serve, url = start(tmp_path)
    yield serve, url
    kill_if_running(serve)


def job_url(serve: Serve, job_instance_id: str) -> str:
    return (
        f"{serve.rest_url}/workspaces/{WORKSPACE}/items/{ITEM_TYPE}/{ITEM}/jobTypes/{JOB_TYPE}"
        f"/instances/{job_instance_id}"
    )


HEADERS = {"x-ms-client-tenant-id": TENANT, "ActivityId": "browser", "RequestId": "browser"}


def create_over_rest(serve: Serve) -> str:
    job_instance_id = str(uuid.uuid4())
    body = {"invokeType": "Manual", "creationPayload": {"durationSeconds": 600}}
    reply = httpx.post(job_url(serve, job_instance_id), headers=HEADERS, json=body)
    assert reply.status_code == 202, reply.text
    return job_instance_id


def open_console(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 800})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    return page


def test_a_job_created_over_rest_appears_live_and_the_cancel_button_cancels_it(
    browser: Browser, console: tuple[Serve, str]
) -> None:
    serve, url = console
    page = open_console(browser, url)
    expect(page.locator("#live")).to_have_text("live")

    job = create_over_rest(serve)
    row = page.locator(f'tr[data-key$="/{job}"]')
    expect(row.locator(".status")).to_have_text("InProgress")
    expect(page.locator('#counts [data-status="InProgress"] b')).to_have_text("1")
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-id")).to_have_text(job)
    page.locator("#confirm-cancel").click()

    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(page.locator("#message")).to_contain_text(f"Job {job} is")
    expect(page.locator('#counts [data-status="Cancelled"] b')).to_have_text("1")
    assert httpx.get(job_url(serve, job), headers=HEADERS).json()["status"] == "Cancelled"
    row.click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-history li")).to_have_count(4)
    expect(page.locator("#detail-history li").last).to_contain_text("Cancelled")
    expect(page.locator("#detail-fields")).to_contain_text("dev-user@fabric-jobs.invalid")  # --dev's caller
    assert httpx.get(f"{serve.rest_url}/console").status_code == 404
    page.close()


def test_a_running_jobs_progress_moves_live_in_the_table_and_the_detail(
    browser: Browser, console: tuple[Serve, str]
) -> None:
    serve, url = console
    page = open_console(browser, url)
    expect(page.locator("#live")).to_have_text("live")

    job = create_over_rest(serve)  # the demo job reports its progress every second
    row = page.locator(f'tr[data-key$="/{job}"]')
    shown = row.locator(".progress-text")
    expect(shown).to_have_text(re.compile(r"^[0-9.]+% forecasting: \d+ of 600 s$"))
    first = shown.inner_text()
    expect(shown).not_to_have_text(first)  # the next report arrives by the change stream, without a reload
    assert 0 < float(row.locator("progress").get_attribute("value") or "0") <= 100
    row.click()
    expect(page.locator("#detail-fields")).to_contain_text(re.compile(r"Progress[0-9.]+% forecasting: "))
    expect(page.locator("#detail-history li")).to_have_count(2)  # a report is not a step of the history

    httpx.post(job_url(serve, job) + "/cancel", headers=HEADERS)
    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(row.locator(".progress")).to_have_count(0)
    expect(page.locator("#detail-fields")).to_contain_text("forecasting: ")  # kept with the job
    page.close()


def test_keeping_a_job_running_at_the_confirmation_cancels_nothing(
    browser: Browser, console: tuple[Serve, str]
) -> None:
    serve, url = console
    job = create_over_rest(serve)
    page = open_console(browser, url)
    row = page.locator(f'tr[data-key$="/{job}"]')
    expect(row.locator(".status")).to_have_text("InProgress")

    row.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Keep it running").click()

    expect(page.locator("#confirm")).to_be_hidden()
    assert httpx.get(job_url(serve, job), headers=HEADERS).json()["status"] == "InProgress"
    page.close()


def test_cancel_all_of_an_item_shows_the_count_first_and_cancels_each_job_not_ended(
    browser: Browser, console: tuple[Serve, str]
) -> None:
    serve, url = console
    jobs = [create_over_rest(serve), create_over_rest(serve)]
    page = open_console(browser, url)
    expect(page.locator("#live")).to_have_text("live")
    for job in jobs:
        expect(page.locator(f'tr[data-key$="/{job}"] .status')).to_have_text("InProgress")
    expect(page.locator("#cancel-all")).to_be_disabled()

    page.locator('#filters input[name="item"]').fill(ITEM)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#cancel-all")).to_be_enabled()
    page.locator("#cancel-all").click()
    expect(page.locator("#confirm-all")).to_be_visible()
    expect(page.locator("#confirm-all-count")).to_have_text("2")
    expect(page.locator("#confirm-all-scope")).to_have_text(f"item {ITEM}")
    page.get_by_role("button", name="Keep them running").click()
    expect(page.locator("#confirm-all")).to_be_hidden()
    assert [httpx.get(job_url(serve, job), headers=HEADERS).json()["status"] for job in jobs] == ["InProgress"] * 2

    page.locator("#cancel-all").click()
    expect(page.locator("#confirm-all-count")).to_have_text("2")
    page.locator("#confirm-all-cancel").click()

    expect(page.locator("#message")).to_contain_text("Asked 2 job(s) to cancel: 2 ended")
    for job in jobs:
        expect(page.locator(f'tr[data-key$="/{job}"] .status')).to_have_text("Cancelled")
    assert [httpx.get(job_url(serve, job), headers=HEADERS).json()["status"] for job in jobs] == ["Cancelled"] * 2
    page.locator("#cancel-all").click()
    expect(page.locator("#confirm-all-count")).to_have_text("0")
    expect(page.locator("#confirm-all-cancel")).to_be_hidden()
    page.close()


def test_with_a_token_the_page_asks_for_it_once_and_then_works(browser: Browser, tmp_path: Path) -> None:
    serve, url = start(tmp_path, "--admin-token", TOKEN)
    try:
        job = create_over_rest(serve)
        page = open_console(browser, url)
        expect(page.locator("#login")).to_be_visible()
        page.locator('#login input[name="token"]').fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()

        expect(page.locator(f'tr[data-key$="/{job}"] .status')).to_have_text("InProgress")
        expect(page.locator("#live")).to_have_text("live")
        assert httpx.get(url + "/api/jobs").status_code == 401
        page.close()
    finally:
        kill_if_running(serve)


def test_a_console_off_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    result = subprocess.run(
        command("serve", "--admin-host", "0.0.0.0", "--admin-port", "0", "--database", database),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "fabric-jobs serve: error: --admin-host 0.0.0.0 is not loopback: the web console there needs a token, set "
        "--admin-token or FABRIC_JOBS_ADMIN_TOKEN"
    ]
