"""One page per run (nowcast/render/page.py): what it shows, that every link resolves, and
that it works in a real headless browser (Debian's chromium, driven by Playwright; the
browser tests skip only when no chromium is installed)."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from nowcast import products
from nowcast.archive import open_archive
from nowcast.conventions import TIME
from nowcast.render.page import PAGE_NAME, build_page, scan, write_page

SHOTS = Path(os.environ.get("NOWCAST_PAGE_SHOTS", "/tmp/page-shots"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
METHODS = {"extrapolation": (200, 220, 255), "radar-5min": (255, 215, 190)}
ISSUES = ("20160711T2100", "20160711T2110")
LEADS = (5, 30, 60)


def _png(path: Path, text: str, colour) -> None:
    im = Image.new("RGB", (320, 120), colour)
    ImageDraw.Draw(im).text((10, 50), text, fill="black")
    im.save(path)


def synthetic_run(out: Path) -> Path:
    """A folder as render + evaluate leave it: maps of 2 methods x 2 issue times x 3 leads,
    probability maps and stamps of one, GIFs, a report and a point series (tiny images)."""
    out.mkdir(parents=True, exist_ok=True)
    for method, colour in METHODS.items():
        for issue in ISSUES:
            for lead in LEADS:
                name = f"precipitation_rate_{method}_{issue}_lead{lead:03d}.png"
                _png(out / name, f"{method} {issue} +{lead} min", colour)
            frame = Image.new("RGB", (40, 20), colour)
            frame.save(out / f"precipitation_rate_{method}_{issue}.gif", save_all=True)
    for lead in LEADS[:2]:
        stem = f"precipitation_rate_radar-5min_{ISSUES[0]}"
        _png(out / f"{stem}_prob-ge5_lead{lead:03d}.png", f"P>=5 +{lead}", (220, 250, 220))
        _png(out / f"{stem}_members_lead{lead:03d}.png", f"members +{lead}", (250, 250, 200))
    report = out / "report"
    report.mkdir()
    (report / "scores.md").write_text(
        "# Verification scores\n\nPooled over all issue times.\n\n## Key scores\n\n"
        "| lead (min) | extrapolation MAE | radar-5min MAE |\n|---:|---:|---:|\n"
        "| 5 | 0.100 | 0.090 |\n| 30 | 0.400 | nan |\n",
        encoding="utf-8",
    )
    (report / "scores.csv").write_text("method,lead_time,metric,value\nextrapolation,5,MAE,0.1\n")
    _png(report / "mae.png", "MAE against lead", (245, 245, 245))
    _png(out / "point_Bern.png", "Bern", (235, 235, 255))
    (out / "point_Bern.csv").write_text("point,method,value\nBern,observed,1.5\n")
    (out / "odd name & <more>.txt").write_text("a file name that needs escaping")
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value and not value.startswith(("#", "data:")):
                self.links.append(value)


def links_of(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.links


def test_page_shows_the_run_and_every_link_is_a_file_in_the_folder(tmp_path):
    folder = synthetic_run(tmp_path / "run")
    meta = {"title": "a <run>", "command": "nowcast render fc.nc", "inputs": ["fc.nc"]}
    path = write_page(folder, {**meta, "variable": "precipitation_rate"})
    assert path == folder / PAGE_NAME
    page = path.read_text(encoding="utf-8")
    assert "<title>a &lt;run&gt;</title>" in page and "nowcast render fc.nc" in page
    assert "http://" not in page and "https://" not in page  # nothing from the network
    links = links_of(page)
    assert links and all(not urlparse(link).scheme for link in links)
    for link in links:
        target = (folder / unquote(link)).resolve()
        assert target.is_file() and target.is_relative_to(folder.resolve()), link
    assert "odd%20name%20%26%20%3Cmore%3E.txt" in links  # escaped and encoded
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert [data["labels"]["m"][k] for k in data["values"]["m"]] == ["extrapolation", "radar-5min"]
    assert {d: v for d, v in data["values"].items() if d != "m"} == {
        "i": list(ISSUES),
        "p": ["forecast", "prob-ge5", "members"],
        "l": ["5", "30", "60"],
    }
    assert len(data["items"]) == 2 * 2 * 3 + 4 and data["labels"]["l"]["60"] == "+1 h"
    assert data["labels"]["i"]["20160711T2110"] == "2016-07-11 21:10 UTC"
    assert data["gifs"]["precipitation_rate_radar-5min|20160711T2100|forecast"].endswith(
        "_20160711T2100.gif"
    )
    # the report's Markdown as tables, its plots, the point series, the provenance
    assert '<td class="num">0.090</td>' in page and "<h3>Key scores</h3>" in page
    assert 'src="report/mae.png"' in page and 'src="point_Bern.png"' in page
    assert "versions" in page and "nowcast 0.1.0" in page
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # written atomically
    found = scan(folder)
    assert list(found.reports) == ["report"] and found.points == ["point_Bern.png"]


def test_empty_folder_and_a_running_batch(tmp_path):
    page = build_page(tmp_path, {"status": {"issue_times": ["a", "b"], "done": ["a"]}})
    assert "<script" not in page  # no maps: no viewer
    assert "2 issue times: 1 done, 0 already complete, 0 failed" in page
    running = build_page(tmp_path, {"status": {"failed": {"b": "x < y"}}, "running": True})
    assert 'http-equiv="refresh"' in running and "b: x &lt; y" in running


def test_batch_page_rewritten_as_issue_times_complete(tmp_path):
    from nowcast.config.batch import BatchConfig
    from pipelines.page import BatchPage

    cfg = BatchConfig(name="b", output=str(tmp_path), methods=("extrapolation",))
    times = list(pd.date_range("2016-07-11T21:00", periods=3, freq="10min"))
    summary = SimpleNamespace(issue_times=times, skipped=[], failed={})
    page = BatchPage(cfg, ["in.nc"], {"command": "nowcast batch b.yaml"}, every=3600)
    page.running(summary, force=True)
    first = (tmp_path / PAGE_NAME).read_text()
    assert "3 issue times: 0 done" in first and 'http-equiv="refresh"' in first
    done = {times[0]: SimpleNamespace(status="done", error=None)}
    page.running(summary, done)  # within `every`: not rewritten
    assert (tmp_path / PAGE_NAME).read_text() == first
    page.running(summary, done, force=True)
    assert "3 issue times: 1 done" in (tmp_path / PAGE_NAME).read_text()
    summary.to_dict = lambda: {"issue_times": [str(t) for t in times], "done": ["x"] * 3}
    last = page.finished(summary).read_text()
    assert "3 issue times: 3 done" in last and "refresh" not in last
    assert "nowcast batch b.yaml" in last and "in.nc" in last


def _browser():
    """Playwright's chromium on the system's chromium (no browser download)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (CI installs Debian's chromium: .ci/run)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    return sync_api, CHROMIUM


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    try:  # for a person to look at
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / name)
    except OSError:
        pass
    return path


def check_in_browser(folder: Path, tmp_path: Path, shot: str, *, steps=True, more=None):
    """Open ``folder/index.html`` in headless chromium: no console error, every link and
    image a file in the folder, every image loaded; with ``steps``, stepping a lead (button
    and keyboard) changes the map. Returns the page's screenshot."""
    sync_api, chromium = _browser()
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.goto((folder / PAGE_NAME).as_uri())
            page.wait_for_load_state("load")
            urls = page.eval_on_selector_all(
                "a[href], img[src]", "els => els.map(e => e.href || e.src)"
            )
            for link in urls:
                parsed = urlparse(link)
                if parsed.fragment and parsed.path.endswith(PAGE_NAME):
                    continue  # a section of the page
                assert parsed.scheme == "file", link
                target = Path(unquote(parsed.path))
                assert target.is_file() and target.is_relative_to(folder), link
            broken = page.eval_on_selector_all(
                "img",
                "els => els.filter(e => e.style.display !== 'none' && e.offsetParent"
                " && !(e.complete && e.naturalWidth > 0)).map(e => e.src)",
            )
            assert broken == []
            if steps:
                first = page.get_attribute("#map-image", "src")
                page.click("#l-next")
                second = page.get_attribute("#map-image", "src")
                assert second != first
                page.locator("body").press("ArrowRight")
                third = page.get_attribute("#map-image", "src")
                assert third != second  # the next lead (or the first again, after the last)
                page.keyboard.press("ArrowLeft")
                assert page.get_attribute("#map-image", "src") == second
                page.wait_for_function("document.getElementById('map-image').complete")
                assert page.evaluate("document.getElementById('map-image').naturalWidth") > 0
            if more is not None:
                more(page)
            path = _shot(page, tmp_path, shot)
        finally:
            browser.close()
    assert errors == []
    return path, (first, second, third) if steps else None


@pytest.mark.slow  # a browser (and maps, a report): over 5 s
def test_page_in_headless_chromium(tmp_path):
    folder = synthetic_run(tmp_path / "run")
    write_page(folder, {"command": "nowcast render", "variable": "precipitation_rate"})

    def methods_products_side_by_side(page):
        src = lambda: page.get_attribute("#map-image", "src")  # noqa: E731
        page.keyboard.press("m")  # the next method, same issue time and lead
        assert "radar-5min_20160711T2100_lead030" in src()
        page.keyboard.press("p")  # its probability map, then its stamps
        assert src().endswith("radar-5min_20160711T2100_prob-ge5_lead030.png")
        page.keyboard.press("p")
        assert src().endswith("_members_lead030.png")
        page.keyboard.press("ArrowDown")  # no stamps at 21:10: its forecast
        assert src().endswith("radar-5min_20160711T2110_lead030.png")
        assert "#m=precipitation_rate_radar-5min&i=20160711T2110&p=forecast&l=30" in page.url
        page.check("#side-toggle")
        sides = page.eval_on_selector_all("#side img", "els => els.map(e => e.alt)")
        assert sides == ["extrapolation", "radar-5min"]
        assert page.is_hidden("#map-image")
        page.uncheck("#side-toggle")
        page.reload()  # a batch's page reloads: the place is kept
        assert src().endswith("radar-5min_20160711T2110_lead030.png")

    _, srcs = check_in_browser(
        folder, tmp_path, "page-synthetic.png", more=methods_products_side_by_side
    )
    assert [s.rsplit("_lead", 1)[1] for s in srcs] == ["005.png", "030.png", "060.png"]
    assert all("extrapolation_20160711T2100" in s for s in srcs)


@pytest.fixture(scope="module")
def crop_files(shared_data, tmp_path_factory):
    """Persistence and a noisy copy on a 48 x 64 crop of the MeteoSwiss radar, 2 issue
    times x 2 leads, and the crop's observations."""
    src = shared_data / "radar" / "mch-2016-07-11.nc"
    archive = open_archive([str(src)]).isel(x=slice(300, 364), y=slice(300, 348))
    archive = archive.isel({TIME: slice(8, 14)}).load()
    folder = tmp_path_factory.mktemp("crop")
    step = archive[TIME].values[1] - archive[TIME].values[0]
    values = archive.values[[2, 3]][:, None].repeat(2, axis=1)
    fc = products.forecast_array(
        values, issue_times=archive[TIME].values[[2, 3]], step=step, template=archive
    )
    paths = {"persistence": folder / "pers.nc", "noisy": folder / "noisy.nc"}
    products.write_forecast(fc, paths["persistence"], method="persistence")
    noisy = fc.copy(data=fc.values * np.float32(1.1))
    products.write_forecast(noisy, paths["noisy"], method="noisy")
    return src, paths


def _cli(args):
    from nowcast.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow  # a browser (and maps, a report): over 5 s
def test_render_and_evaluate_write_their_page(crop_files, shared_data, tmp_path):
    truth, paths = crop_files
    maps = tmp_path / "maps"
    args = ["render", paths["persistence"], paths["noisy"], "--truth", truth, "--gif"]
    res = _cli([*args, "--dpi", 40, "--map-data", shared_data / "maps", "-o", maps])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == str(maps / PAGE_NAME)
    page = (maps / PAGE_NAME).read_text()
    assert "nowcast render " in page and str(truth) in page
    assert f"<td>{maps.resolve()}</td>" in page  # where it is, not where it was made
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    assert [data["labels"]["m"][k] for k in data["values"]["m"]] == ["persistence", "noisy"]
    assert data["values"]["l"] == ["5", "10"]
    check_in_browser(maps, tmp_path, "page-render.png")

    report = tmp_path / "report"
    res = _cli(["evaluate", "-f", paths["persistence"], "-f", paths["noisy"], "--truth", truth,
                "--thresholds", "0.5", "--scales", "1,3", "-o", report])  # fmt: skip
    assert res.exit_code == 0, res.output
    page = (report / PAGE_NAME).read_text()
    assert "<h3>Key scores</h3>" in page and 'src="mae.png"' in page
    check_in_browser(report, tmp_path, "page-evaluate.png", steps=False)
