"""Importing a file in a real browser: upload, preview what Accord understood, confirm, report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

PREVIEW_SCREENSHOT = "/tmp/accord-import-preview.png"
REPORT_SCREENSHOT = "/tmp/accord-import-report.png"
# A Salesforce contacts export, saved from Excel on Windows: semicolons and Windows-1252.
EXPORT = ("Contact ID;Salutation;First Name;Last Name;Email;Phone;Mailing City;Mailing Country;"
          "Title;Lead Source\r\n"
          "003A1;Ms.;Zoë;MÜLLER;zoe.mueller@example.de;030 1234567;Köln;Germany;Buyer;Web\r\n"
          "003A2;Mr.;José;García;jose@example;;Málaga;Spain;CFO;Event\r\n"
          "003A3;;;;;;Berlin;Germany;;Web\r\n")


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


@pytest.fixture
def export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from accord.access.policy import SYSTEM
    from accord.core.db import session_scope
    from accord.core.settings import reset_settings
    from accord.integration.sources import create_source
    from accord.models import Source

    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path / "data"))  # where uploads wait
    reset_settings()
    with session_scope() as session:
        if session.query(Source).filter_by(name="salesforce").one_or_none() is None:
            create_source(session, SYSTEM, name="salesforce", kind="crm", trust_rank=20,
                          default_country="DE")
    path = tmp_path / "contacts.csv"
    path.write_bytes(EXPORT.encode("cp1252"))
    yield path
    reset_settings()


def test_upload_preview_confirm_and_read_the_report(tab: Tab, live_server: Any,
                                                    export: Path) -> None:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.get_by_role("link", name="Imports").click()
    page.wait_for_url(live_server.url + "/imports")
    page.get_by_role("link", name="Import a file").click()
    page.wait_for_url(live_server.url + "/imports/new")
    page.get_by_label("File").set_input_files(str(export))
    page.get_by_label("Source").select_option("salesforce")
    page.get_by_role("button", name="Preview").click()

    page.wait_for_url(live_server.url + "/imports/preview")
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview: contacts.csv")
    expect(page.locator('[data-fact="encoding"]')).to_have_text("cp1252")
    expect(page.locator('[data-fact="delimiter"]')).to_have_text(";")
    expect(page.locator('[data-fact="layout"]')).to_have_text("Salesforce")
    expect(page.locator('[data-column="Title"] code')).to_have_text("job_title")
    expect(page.locator('[data-column="Lead Source"] code')).to_have_text("cf.lead_source")
    zoe = page.locator('.preview-table tr[data-line="2"]')
    expect(zoe).to_contain_text("Zoë")
    expect(zoe).to_contain_text("Müller")  # standardised from the shouted MÜLLER
    expect(zoe).to_contain_text("+49301234567")
    expect(page.locator('tr[data-line="3"] [data-flag="email"]')).to_be_visible()
    expect(page.locator('tr[data-line="4"] [data-error]')).to_contain_text("Rejected")
    expect(page.locator('.journey [aria-current="step"]')).to_have_text("Preview")
    page.screenshot(path=PREVIEW_SCREENSHOT, full_page=True)
    page.get_by_role("button", name="Confirm import").click()

    page.wait_for_url(re.compile(r".*/imports/\d+$"))
    report = page.locator("#report")
    expect(report).to_have_attribute("data-status", "completed")
    expect(page.locator('[data-count="total"]')).to_have_text("3")
    expect(page.locator('[data-count="accepted"]')).to_have_text("2")
    expect(page.locator('[data-count="rejected"]')).to_have_text("1")
    expect(page.locator('.rejections tr[data-line="4"]')).to_contain_text("no usable name")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report (CSV)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "line_no,field,reason,row" in text and "\n4," in text
    page.screenshot(path=REPORT_SCREENSHOT, full_page=True)

    page.get_by_role("link", name="All imports").click()
    expect(page.locator("table")).to_contain_text("contacts.csv")
    assert tab.errors == [], tab.errors  # CSP violations are reported as console errors
