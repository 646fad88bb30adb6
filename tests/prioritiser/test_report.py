"""Tests for prioritiser.report: the self-contained HTML report of galaxies, cycles and models."""

from __future__ import annotations

import base64
import html
import io
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prioritiser.errors import PrioritiserError
from prioritiser.report import write_report
from zoobot.schemas import decals_dr5_schema

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'
VOID_ELEMENTS = {"meta", "img", "br", "link", "input", "hr", "wbr", "source"}
N_GALAXIES = 6


def _write_galaxy_png(path: Path, rng: np.random.Generator, size: int = 48) -> None:
    """A seeded fake galaxy: an elliptical Gaussian blob plus noise."""
    y, x = np.mgrid[:size, :size] - size / 2
    angle = rng.uniform(0, np.pi)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    blob = np.exp(-(u**2 / (2 * rng.uniform(4, 10) ** 2) + v**2 / (2 * rng.uniform(2, 5) ** 2)))
    colour = np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)])
    pixels = blob[..., None] * colour + rng.normal(0, 0.03, (size, size, 3))
    Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(path)


def _fractions(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random vote fractions that sum to one within each question."""
    columns = {}
    for question in decals_dr5_schema.questions:
        values = rng.dirichlet(np.ones(len(question.answers)), size=n)  # [n, n_answers]
        for j, answer in enumerate(question.answers):
            columns[f"{answer.name}_fraction"] = values[:, j]
    return columns


@pytest.fixture
def top_galaxies(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    locs = []
    for i in range(N_GALAXIES):
        loc = tmp_path / "images" / f"galaxy_{i}.png"
        loc.parent.mkdir(exist_ok=True)
        _write_galaxy_png(loc, rng)
        locs.append(str(loc))
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, N_GALAXIES + 1),
            "id_str": [f"J{100000 + i}" for i in range(N_GALAXIES)],
            "file_loc": locs,
            "score": np.sort(rng.random(N_GALAXIES))[::-1],
            "selection": ["active_priority"] * (N_GALAXIES - 2) + ["random_selection"] * 2,
        }
    )
    for name in decals_dr5_schema.question_names:
        frame[f"mi_{name}"] = rng.random(N_GALAXIES) * 0.3
    return frame.assign(**_fractions(rng, N_GALAXIES))


@pytest.fixture
def cycles() -> pd.DataFrame:
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "kind": ["sync", "retrain", "retrain"],
            "started_at": [start, start + timedelta(hours=1), start + timedelta(hours=2)],
            "ended_at": [start + timedelta(minutes=1), start + timedelta(hours=1, minutes=9), None],
            "status": ["succeeded", "failed", "succeeded"],
            "stage": ["done", "train", "push"],
            "counts": [{"new_classifications": 120}, {}, {"pushed": 40}],
            "metrics": [{}, {}, {"validation_loss": 3.14159265}],
            "error": [None, "RuntimeError: CUDA out of memory", None],
        }
    )


@pytest.fixture
def learning_curve() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "version": [1, 2, 3, 4],
            "n_labelled": [200, 400, 600, 800],
            "validation_loss": [12.0, 10.5, 10.9, 9.2],
            "baseline_loss": [np.nan, 12.0, 10.5, 10.5],
            "deployed": [True, True, False, True],
            "status": ["deployed", "deployed", "rejected", "deployed"],
        }
    )


def _report(tmp_path, top_galaxies, cycles, learning_curve, **kwargs) -> str:
    path = write_report(
        tmp_path / "out" / "report.html",
        top_galaxies,
        cycles,
        learning_curve,
        decals_dr5_schema,
        **kwargs,
    )
    return path.read_text(encoding="utf-8")


class _TagChecker(HTMLParser):
    """Records every start tag and fails on a closing tag that does not match the open one."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _parse(page: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    return checker


def test_report_shows_every_galaxy_with_its_embedded_image(
    tmp_path, top_galaxies, cycles, learning_curve
):
    page = _report(tmp_path, top_galaxies, cycles, learning_curve)
    assert page.startswith("<!DOCTYPE html>")
    tags = _parse(page).tags
    cards = [attrs for tag, attrs in tags if tag == "article"]
    assert len(cards) == N_GALAXIES
    for id_str in top_galaxies["id_str"]:
        assert id_str in page
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == N_GALAXIES + 1  # one per galaxy plus the learning curve
    for src in images:
        header, payload = src.split(",", 1)
        assert header in {"data:image/png;base64", "data:image/jpeg;base64"}
        with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
            image.load()  # raises on truncated data, which browsers would still draw in part
            assert min(image.size) > 0
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in images}
    for loc in top_galaxies["file_loc"]:
        assert Path(loc).read_bytes() in embedded


def test_report_orders_cards_by_rank_and_marks_selection(
    tmp_path, top_galaxies, cycles, learning_curve
):
    shuffled = top_galaxies.sample(frac=1.0, random_state=3)
    page = _report(tmp_path, shuffled, cycles, learning_curve)
    positions = [page.index(f"J{100000 + i}") for i in range(N_GALAXIES)]
    assert positions == sorted(positions)
    assert page.count('class="chip sel-random"') == 2
    assert page.count('class="chip sel-active"') == N_GALAXIES - 2


def test_card_lists_the_top_three_questions_by_mutual_information(
    tmp_path, top_galaxies, cycles, learning_curve
):
    galaxy = top_galaxies.iloc[[0]].copy()
    for name in decals_dr5_schema.question_names:
        galaxy[f"mi_{name}"] = 0.01
    galaxy["mi_bar"], galaxy["mi_merging"], galaxy["mi_how-rounded"] = 0.9, 0.5, 0.7
    galaxy["mi_spiral-winding"] = np.nan
    page = _report(tmp_path, galaxy, cycles, learning_curve)
    listed = re.findall(r"<li><span>([^<]+)</span><span>([^<]+)</span></li>", page)
    assert listed == [("bar", "0.900"), ("how-rounded", "0.700"), ("merging", "0.500")]


def test_vote_bars_highlight_the_most_likely_answer(tmp_path, top_galaxies, cycles, learning_curve):
    galaxy = top_galaxies.iloc[[0]].copy()
    smooth = {"smooth": 0.1, "featured-or-disk": 0.75, "artifact": 0.15}
    for answer, value in smooth.items():
        galaxy[f"smooth-or-featured_{answer}_fraction"] = value
    page = _report(tmp_path, galaxy, cycles, learning_curve)
    block = page.split("<h3>smooth-or-featured</h3>", 1)[1].split("<h3>", 1)[0]
    best = re.findall(r'<div class="a best"><span class="name"[^>]*>([^<]+)</span>', block)
    assert best == ["featured-or-disk"]
    assert re.findall(r'style="width:([0-9.]+)%"', block) == ["10.0", "75.0", "15.0"]
    # featured (0.75) then a random disk-edge-on split: disk-edge-on is asked with p = 0.75
    assert "<h3>disk-edge-on</h3>" in page
    assert "<h3>how-rounded</h3>" not in page  # asked with p = 0.1


def test_hostile_text_is_escaped_everywhere(tmp_path, top_galaxies, cycles, learning_curve):
    top_galaxies.loc[0, "id_str"] = HOSTILE
    top_galaxies.loc[1, "selection"] = HOSTILE
    cycles.loc[1, "error"] = HOSTILE
    cycles.loc[0, "stage"] = HOSTILE
    cycles.at[2, "counts"] = {HOSTILE: HOSTILE}
    learning_curve.loc[0, "status"] = HOSTILE
    page = _report(tmp_path, top_galaxies, cycles, learning_curve, title=HOSTILE)
    assert HOSTILE not in page
    assert page.count("<script>") == 1
    assert html.escape(HOSTILE) in page
    tags = _parse(page).tags
    assert [tag for tag, _ in tags].count("img") == N_GALAXIES + 1
    assert [tag for tag, _ in tags].count("script") == 1
    assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]


def test_summary_names_last_cycle_and_deployed_version(
    tmp_path, top_galaxies, cycles, learning_curve
):
    page = _report(tmp_path, top_galaxies, cycles, learning_curve)
    summary = re.search(r'<section class="summary">(.*?)</section>', page).group(1)
    assert f"<b>{N_GALAXIES}</b>" in summary
    assert "last cycle #3 retrain" in summary
    assert "<b>v4</b>" in summary
    assert "3.142" in page  # metrics dict rendered with 4 significant digits
    assert "RuntimeError: CUDA out of memory" in page


def test_report_has_no_external_resources(tmp_path, top_galaxies, cycles, learning_curve):
    page = _report(tmp_path, top_galaxies, cycles, learning_curve)
    for tag, attrs in _parse(page).tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:"), (tag, name, value[:40])
    assert "url(" not in page
    assert "Content-Security-Policy" in page


def test_empty_frames_render_placeholders(tmp_path, top_galaxies, cycles, learning_curve):
    page = _report(tmp_path, top_galaxies.iloc[:0], cycles.iloc[:0], learning_curve.iloc[:0])
    _parse(page)
    assert "No galaxies scored yet." in page
    assert "No cycles run yet." in page
    assert "No model versions trained yet." in page


def test_unreadable_image_gets_a_placeholder(
    tmp_path, top_galaxies, cycles, learning_curve, caplog
):
    top_galaxies.loc[0, "file_loc"] = str(tmp_path / "missing.png")
    page = _report(tmp_path, top_galaxies, cycles, learning_curve)
    assert page.count('<div class="noimg">') == 1
    assert "missing.png" in caplog.text


def test_large_image_is_shrunk_to_a_thumbnail(tmp_path, top_galaxies, cycles, learning_curve):
    big = tmp_path / "big.png"
    _write_galaxy_png(big, np.random.default_rng(1), size=600)
    top_galaxies.loc[0, "file_loc"] = str(big)
    page = _report(tmp_path, top_galaxies.iloc[[0]], cycles, learning_curve)
    src = re.search(r'<img src="data:image/jpeg;base64,([^"]+)"', page).group(1)
    with Image.open(io.BytesIO(base64.b64decode(src))) as image:
        assert max(image.size) == 256


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        ("top_galaxies", "file_loc"),
        ("top_galaxies", "mi_bar"),
        ("top_galaxies", "merging_merger_fraction"),
        ("cycles", "error"),
        ("learning_curve", "baseline_loss"),
    ],
)
def test_missing_column_gives_a_clear_error(
    tmp_path, top_galaxies, cycles, learning_curve, frame, column
):
    frames = {"top_galaxies": top_galaxies, "cycles": cycles, "learning_curve": learning_curve}
    frames[frame] = frames[frame].drop(columns=[column])
    with pytest.raises(PrioritiserError, match=f"{frame} is missing column.*'{column}'"):
        write_report(tmp_path / "r.html", schema=decals_dr5_schema, **frames)
    assert not (tmp_path / "r.html").exists()


def test_non_frame_input_gives_a_clear_error(tmp_path, top_galaxies, learning_curve):
    with pytest.raises(PrioritiserError, match="cycles must be a pandas DataFrame, got list"):
        write_report(tmp_path / "r.html", top_galaxies, [], learning_curve, decals_dr5_schema)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run_chromium(binary: str, tmp_path: Path, *mode: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *mode,
    ]
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment, check=True
    )


@pytest.mark.skipif(
    _chromium() is None, reason="no chromium binary on PATH (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(tmp_path, top_galaxies, cycles, learning_curve):
    binary = _chromium()
    path = write_report(
        tmp_path / "report.html", top_galaxies, cycles, learning_curve, decals_dr5_schema
    )
    dom = _run_chromium(binary, tmp_path, "--dump-dom", path.as_uri()).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded is not None and total is not None, "the report's load script did not run"
    assert int(total.group(1)) == N_GALAXIES + 1
    assert int(loaded.group(1)) == N_GALAXIES + 1

    screenshot = tmp_path / "report.png"
    _run_chromium(
        binary, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1600", path.as_uri()
    )
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 10
    assert (pixels < 100).mean() > 0.01  # dark text and galaxy images, not a blank page


def test_summary_picks_the_highest_cycle_id_and_flags_a_failure(
    tmp_path, top_galaxies, cycles, learning_curve
):
    cycles.loc[2, "status"] = "failed"
    newest_first = cycles.iloc[::-1]
    page = _report(tmp_path, top_galaxies, newest_first, learning_curve.iloc[:3])
    summary = re.search(r'<section class="summary">(.*?)</section>', page).group(1)
    assert '<div class="stat bad"><b>failed</b><span>last cycle #3 retrain, stage push' in summary
    assert "<b>v2</b>" in summary
