"""End to end in a real browser: Playwright drives Debian's Chromium through the whole job on the sample media.

Two consents with photos, both clips extracted, two faces deleted in the review grid (checked in the catalog),
a few training steps of the tiny test model, a swap previewed and rendered (the video element loads), the
output dropped on Verify and read as verified. Each page's screenshot is kept in ARTIFACTS.

`make test` installs Chromium when it is missing (scripts/install-chromium.sh); without it this test fails,
never skips: the web UI is not tested otherwise.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from facewright import api
from facewright.media import read_video, write_image

ARTIFACTS = Path(os.environ.get("FACEWRIGHT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" /
                                "test-artifacts")) / "web"
TOKEN = "browser-test-token"
JOB_MS = 150_000  # how long a job may take on a busy 2-core machine


def chromium() -> str | None:
    """Debian's Chromium (or $FACEWRIGHT_CHROMIUM); None: Playwright's own, where install-chromium.sh fetched it."""
    for candidate in (os.environ.get("FACEWRIGHT_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path, sample):
    """`facewright serve` on a fresh workspace, offering a folder with both clips and both consent photos."""
    media = tmp_path / "media"
    media.mkdir()
    for clip, person in (("WolfgangLanger_Pexels.mp4", "anna"), ("single_face.mp4", "ben")):
        shutil.copy(sample(clip), media / clip)
        write_image(next(read_video(sample(clip))).image, tmp_path / f"{person}-photo.png")
    workspace, port = tmp_path / "ws", free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "facewright", "serve", "--workspace", str(workspace),
                                "--port", str(port), "--token", TOKEN, "--allow", str(media)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start:\n{(tmp_path / 'serve.log').read_text()}")
            time.sleep(0.3)
    yield url, workspace, tmp_path
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.mark.slow
def test_the_whole_job_in_a_browser(server):
    from playwright.sync_api import expect, sync_playwright

    url, workspace, folder = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        except Exception as exc:  # noqa: BLE001 - never a skip: the web UI is not tested otherwise
            pytest.fail(f"no Chromium to drive ({exc}): run scripts/install-chromium.sh (make test does), or set "
                        "FACEWRIGHT_CHROMIUM")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        expect.set_options(timeout=JOB_MS)

        def shot(name: str, show: str = "h1") -> None:
            page.locator(show).first.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / f"{name}.png")

        page.goto(f"{url}/")  # no cookie yet: the login page
        expect(page.get_by_label("Token")).to_be_visible()
        page.goto(f"{url}/login?token={TOKEN}")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        for person, role in (("anna", "source"), ("ben", "target")):
            add_consent(page, url, person, role, folder / f"{person}-photo.png", expect)
        expect(page.locator("#consents tbody tr")).to_have_count(2)
        shot("consent")

        extract(page, url, "anna", "WolfgangLanger_Pexels.mp4", {"every": "5"}, expect)
        extract(page, url, "ben", "single_face.mp4", {}, expect)
        shot("extract", "#extract-live")

        page.goto(f"{url}/faceset/ben")
        tiles = page.locator("#face-grid .face")
        expect(tiles.first).to_be_visible()
        tiles.nth(0).click()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        expect(page.locator("#selection-count")).to_have_text("2 selected")
        shot("faceset")
        page.get_by_role("button", name="Delete selected").click()
        expect(page.locator("#selection-count")).to_have_text("2 removed")
        removed = api.face_page("ben", workspace=workspace, status="rejected", reason="removed by user")
        assert removed.total == 2 and all(row.crop is None or not (workspace / "facesets" / "ben" / row.crop).exists()
                                          for row in removed.rows)

        page.goto(f"{url}/train")
        page.get_by_label("A: source faceset").select_option("anna")
        page.get_by_label("B: target faceset").select_option("ben")
        page.get_by_label("Model name (optional)").fill("web-tiny")
        page.get_by_label("Preset", exact=True).select_option("")
        page.get_by_label("Steps (0: the preset's)").fill("12")
        page.locator("#train-options summary").click()
        for name, value in (("model", "test-ae"), ("resolution", "64"), ("batch", "4"), ("warmup", "2"),
                            ("preview_every", "6"), ("log_every", "2")):
            page.locator(f"#train-options [data-option={name}]").fill(value)
        page.get_by_role("button", name="Start training").click()
        expect(page.locator("#train-live .result")).to_contain_text("Trained to step 12")
        expect(page.locator("#train-preview")).to_be_visible()
        shot("train", "#train-live")

        page.goto(f"{url}/swap")
        page.get_by_label("Model", exact=True).select_option("web-tiny")
        page.get_by_label("single_face.mp4", exact=False).check()
        page.get_by_label("Preview frames").fill("2")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview-frames .compare")).to_have_count(2)
        page.locator("#preview-frames input[type=range]").first.fill("30")
        shot("swap-preview", "#preview-result")
        page.get_by_role("button", name="Render").click()
        expect(page.locator("#provenance-badge")).to_have_text("verified")
        page.wait_for_function("document.querySelector('#result-video').readyState >= 1", timeout=30_000)
        shot("swap", "#render-result")
        output = page.locator("#result-download").get_attribute("href").split("?")[0]

        page.goto(f"{url}/verify")
        drop_file(page, output)
        expect(page.locator("#verify-outcome")).to_have_text("verified")
        shot("verify")

        page.goto(f"{url}/")
        expect(page.locator("[data-model=web-tiny]")).to_be_visible()
        shot("overview")
        page.set_viewport_size({"width": 390, "height": 844})  # phone width
        page.goto(f"{url}/faceset/ben")
        expect(page.locator("#face-grid .face").first).to_be_visible()
        shot("faceset-phone")
        browser.close()
    assert not errors, errors


def add_consent(page, url, person, role, photo, expect):
    page.goto(f"{url}/consent")
    page.get_by_label("Person (a short name").fill(person)
    page.get_by_label("Photo of their face").set_input_files(photo)
    expect(page.locator("#c-photo-preview figcaption")).to_contain_text("One face found")
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Purpose, in plain words").fill("testing the facewright web UI end to end on sample media")
    page.get_by_label("Where the results may be shown").fill("tests")
    page.get_by_role("button", name="Record consent").click()
    expect(page.locator(f"#consents tbody tr:has-text('{person}')")).to_be_visible()


def extract(page, url, person, clip, options, expect):
    page.goto(f"{url}/extract")
    page.get_by_label("Person").select_option(person)
    page.get_by_label(clip, exact=False).check()
    page.locator("#extract-options summary").click()
    for name, value in {"size": "64", "dedupe": "0", **options}.items():
        page.locator(f"#extract-options [data-option={name}]").fill(value)
    page.get_by_role("button", name="Extract").click()
    expect(page.locator("#extract-live .result")).to_contain_text(f"Faceset {person}")


def drop_file(page, href):
    """Drop the file at `href` on the Verify page's drop zone, as a user dragging it from their desktop."""
    page.evaluate("""async (href) => {
        const blob = await (await fetch(href)).blob();
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], href.split('/').pop(), { type: blob.type }));
        const zone = document.querySelector('#drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""", href)
