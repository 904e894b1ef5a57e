"""The status page of system-health.py --serve in a real browser: Debian's chromium driven by selenium through
Debian's chromedriver (Selenium Manager never asked, no network). It loads, shows every service, and changes
when one of the test's own services goes down; what the page shows is text, never HTML."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from health_stack import CALM, UNUSED_INFRA
from monitor_support import Monitor
from native_support import recorded_pids, restart
from support import wait_for

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
MISSING = not (CHROMIUM.exists() and CHROMEDRIVER.exists())
# CI installs them (.ci/setup-system.sh): there a missing browser is a failure, not a skip
pytestmark = pytest.mark.skipif(MISSING and not os.environ.get("CI"),
                                reason="chromium and chromium-driver are not installed (bash .ci/setup-system.sh)")
HOSTILE = '<img src=x onerror="window.tmtInjected=1">Dashboard'


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def cards(driver) -> dict[str, dict]:
    """Each service card: its severity and status (data attributes) and the texts a person reads."""
    return driver.execute_script("""
        const found = {};
        for (const card of document.querySelectorAll("article.card")) {
          found[card.dataset.service] = {severity: card.dataset.severity, status: card.dataset.status,
                                         name: card.querySelector(".name").textContent,
                                         state: card.querySelector(".state").textContent,
                                         lines: card.querySelectorAll("svg.spark polyline").length};
        }
        return found;""")


def test_the_page_shows_every_service_and_changes_when_one_goes_down(registry_file, browser):
    def edit(data):
        data["health"]["thresholds"] = dict(CALM)
        data["services"]["dashboard"]["display_name"] = HOSTILE
    cfg = registry_file(drop=("postgres", "redis", "kafka", *UNUSED_INFRA), edit=edit)
    assert restart(cfg, "--skip-health-check").returncode == 0
    monitor = Monitor(cfg, "--interval", "0.5")
    try:
        browser.get(monitor.url)
        services = ("orchestrator", "market-analysis", "execution-engine", "dashboard")
        assert wait_for(lambda: set(cards(browser)) == set(services) and all(
            c["severity"] == "healthy" and c["lines"] for c in cards(browser).values()), 20), cards(browser)
        assert browser.find_element("id", "overall").text == "HEALTHY" and browser.title.startswith("HEALTHY")
        shown = cards(browser)
        assert shown["dashboard"]["name"] == HOSTILE  # shown as the text it is
        assert browser.execute_script("return window.tmtInjected") is None
        assert not browser.find_elements("css selector", "article.card img")

        os.killpg(recorded_pids(cfg)["orchestrator"], 9)
        assert wait_for(lambda: cards(browser)["orchestrator"]["severity"] == "critical", 20), cards(browser)
        assert cards(browser)["orchestrator"]["state"] == "unhealthy"
        assert wait_for(lambda: browser.find_element("id", "overall").text == "CRITICAL", 10)
        findings = browser.find_element("id", "findings").text
        assert "orchestrator" in findings and "--only orchestrator" in findings, findings
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors  # no script error, nothing fetched that is not there
    finally:
        monitor.stop()
