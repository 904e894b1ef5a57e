"""The status page of system-health.py --serve in a real browser: Debian's chromium driven by selenium through
Debian's chromedriver (Selenium Manager never asked, no network). It loads, shows every service, and changes
when one of the test's own services goes down; what the page shows is text, never HTML. At a desk's 1280x800 the
host comes first, a service that is down is red, a probe without an answer charts no time, and a file system is
one gauge whose path never runs under its value."""

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
                                         lines: card.querySelectorAll("svg.spark polyline").length,
            down_rounds: card.querySelectorAll("svg.spark line.bad").length};
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


def page_facts(driver) -> dict:
    """What a person at a 1280x800 screen sees: each state badge's colour, each card's latency line and chart, the
    host gauges (where they are, their label and value boxes)."""
    return driver.execute_script("""
        const box = (node) => { const r = node.getBoundingClientRect();
                                return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
        const found = {cards: {}, gauges: [], innerHeight: window.innerHeight, scrollY: window.scrollY,
                       host: box(document.getElementById("host"))};
        for (const card of document.querySelectorAll("article.card")) {
          found.cards[card.dataset.service] = {
            status: card.dataset.status, severity: card.dataset.severity,
            badge: getComputedStyle(card.querySelector(".state")).backgroundColor,
            time: card.querySelector(".time").textContent,
            lines: card.querySelectorAll("svg.spark polyline").length,
            down_rounds: card.querySelectorAll("svg.spark line.bad").length};
        }
        for (const gauge of document.querySelectorAll("#host .gauge")) {
          const path = gauge.querySelector(".path");
          found.gauges.push({label: gauge.querySelector(".what").textContent, title: gauge.title, box: box(gauge),
                             value: box(gauge.querySelector(".value")), path: path && path.textContent,
                             path_box: path && box(path)});
        }
        return found;""")


def _apart(a: dict, b: dict) -> bool:
    return a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]


def _inside(inner: dict, outer: dict) -> bool:
    return all((inner["left"] >= outer["left"], inner["right"] <= outer["right"], inner["top"] >= outer["top"],
                inner["bottom"] <= outer["bottom"]))


RED, GREEN = "rgb(242, 95, 92)", "rgb(47, 191, 113)"  # status.css: --critical, --healthy


def test_a_desk_screen_shows_the_host_first_down_in_red_no_latency_without_an_answer_and_a_disk_once(
        registry_file, browser, tmp_path):
    """The orchestrator runs; the other services (Market Analysis critical, the Dashboard not) and PostgreSQL are
    down, refused; the host's disks are a long path and its parent, one file system."""
    deep = tmp_path / "trading_system_market_data_archive_2025_first_quarter_orderbook_snapshots_and_fills_by_venue"
    deep.mkdir()

    def edit(data):
        data["health"]["thresholds"] = dict(CALM)
        data["health"]["disk_paths"] = [str(deep), str(tmp_path)]
    cfg = registry_file(drop=("redis", "kafka", *UNUSED_INFRA), edit=edit)
    assert restart(cfg, "--only", "orchestrator", "--no-deps", "--skip-health-check").returncode == 0
    monitor = Monitor(cfg, "--interval", "0.3")
    try:
        browser.set_window_size(1280, 800)
        browser.get(monitor.url)
        # a few rounds charted: each would have drawn the refused probes' times
        assert wait_for(lambda: page_facts(browser)["cards"].get("dashboard", {}).get("down_rounds", 0) >= 3, 20)
        facts = page_facts(browser)
        cards_ = facts["cards"]
        assert cards_["market-analysis"]["severity"] == "critical" and cards_["market-analysis"]["status"] == "unhealthy"
        assert cards_["market-analysis"]["badge"] == RED
        assert cards_["dashboard"]["severity"] == "warning" and cards_["dashboard"]["badge"] == RED  # down is red
        assert cards_["orchestrator"]["badge"] == GREEN
        for refused in ("market-analysis", "dashboard", "postgres"):
            assert cards_[refused]["lines"] == 0, (refused, cards_[refused])  # no latency point for a refusal
            assert cards_[refused]["time"] == "no answer", cards_[refused]
        assert cards_["orchestrator"]["time"].startswith("now ")
        # host resources above the fold, without scrolling
        assert facts["scrollY"] == 0 and facts["host"]["bottom"] <= facts["innerHeight"], facts
        disks = [g for g in facts["gauges"] if g["label"] == "Disk"]
        assert len(disks) == 1, disks  # the long path, its parent and the log directory: one file system
        (disk,) = disks
        assert disk["path"] == str(deep) and f"{deep}, {tmp_path}, " in disk["title"], disk
        assert _apart(disk["path_box"], disk["value"]), disk  # the path never runs under its value ...
        assert _inside(disk["path_box"], disk["box"]) and _inside(disk["value"], disk["box"]), disk  # ... nor out
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        monitor.stop()
