"""A self-contained HTML report of the prioritiser: top galaxies, cycles and the learning curve.

The report is one HTML5 file with every image embedded as a base64 data URI and no external
resource, so it can be mailed or opened on an offline machine. A Content-Security-Policy in the
page forbids any network fetch, and the one inline script (allowed by its hash) marks on ``<body>``
how many images decoded, which lets a headless browser check the page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from prioritiser.errors import PrioritiserError
from zoobot.schemas import Schema

__all__ = ["MAX_QUESTIONS_SHOWN", "THUMBNAIL_SIZE", "write_report"]

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
"""Images larger than this many pixels on a side are shrunk to it before embedding."""

MAX_QUESTIONS_SHOWN = 4
"""At most this many questions get vote-fraction bars on a galaxy card."""

_ASKED_THRESHOLD = 0.5  # a question gets bars when volunteers would likely be asked it
_TOP_MI = 3
_GALAXY_COLUMNS = ("rank", "id_str", "file_loc", "score", "selection")
_CYCLE_COLUMNS = ("id", "kind", "started_at", "ended_at", "status", "stage", "counts", "metrics")
_CYCLE_COLUMNS += ("error",)
_CURVE_COLUMNS = ("version", "n_labelled", "validation_loss", "baseline_loss", "deployed", "status")
_SELECTION_CLASSES = {"active_priority": "sel-active", "random_selection": "sel-random"}
_STATUS_CLASSES = {"deployed": "ok", "succeeded": "ok", "success": "ok", "ok": "ok"}
_STATUS_CLASSES |= {"failed": "bad", "error": "bad", "rejected": "bad", "running": "run"}

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img");
  var loaded = 0;
  images.forEach(function (img) { if (img.complete && img.naturalWidth > 0) { loaded += 1; } });
  document.body.setAttribute("data-images-loaded", String(loaded));
  document.body.setAttribute("data-images-total", String(images.length));
});
"""

_STYLE = """
:root { --ink: #1d2330; --muted: #5d6677; --line: #dde2ea; --accent: #3b5bdb; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
.summary { display: flex; flex-wrap: wrap; gap: 12px; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; }
.stat b { display: block; font-size: 18px; }
.stat span { color: var(--muted); font-size: 12px; }
.stat.ok b { color: #1e6b34; }
.stat.bad b { color: #a12622; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 12px; }
.card header { display: flex; align-items: center; gap: 8px; margin-bottom: 8px; }
.rank { background: var(--ink); color: #fff; border-radius: 6px; padding: 1px 8px;
  font-weight: 600; }
.gid { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; flex: 1; }
.chip { font-size: 11px; border-radius: 10px; padding: 1px 8px; white-space: nowrap;
  background: #eceff3; color: var(--muted); }
.chip.sel-active { background: #e3e9ff; color: #2b45b0; }
.chip.sel-random { background: #fff1db; color: #8a5300; }
.top { display: flex; gap: 12px; }
.top img, .noimg { width: 128px; height: 128px; border-radius: 6px; background: #000;
  object-fit: cover; flex: none; }
.noimg { display: flex; align-items: center; justify-content: center; color: #fff;
  font-size: 12px; }
.score { font-size: 20px; font-weight: 600; }
.label { color: var(--muted); font-size: 12px; }
.mi { margin: 6px 0 0; padding: 0; list-style: none; font-size: 12px; }
.mi li { display: flex; justify-content: space-between; gap: 8px; }
.q { margin-top: 8px; }
.q h3 { font-size: 12px; margin: 0 0 2px; color: var(--muted); font-weight: 600; }
.a { display: grid; grid-template-columns: 120px 1fr 38px; gap: 6px; align-items: center;
  font-size: 11px; line-height: 15px; }
.a .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar { height: 8px; background: #eceff3; border-radius: 4px; overflow: hidden; }
.bar i { display: block; height: 100%; background: #aab4c3; }
.a.best { font-weight: 600; }
.a.best .bar i { background: var(--accent); }
.a .v { text-align: right; font-variant-numeric: tabular-nums; }
.curve img { max-width: 100%; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 12px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #eef1f5; }
.time { white-space: nowrap; }
td.kv { font-family: ui-monospace, monospace; font-size: 11px; }
.pill { border-radius: 10px; padding: 1px 8px; background: #eceff3; }
.pill.ok { background: #d9f2e0; color: #1e6b34; }
.pill.bad { background: #fde2e1; color: #a12622; }
.pill.run { background: #e3e9ff; color: #2b45b0; }
.err { color: #a12622; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 360px; }
.empty { color: var(--muted); font-style: italic; }
"""


def write_report(
    path: str | Path,
    top_galaxies: pd.DataFrame,
    cycles: pd.DataFrame,
    learning_curve: pd.DataFrame,
    schema: Schema,
    title: str = "Galaxy Zoo prioritiser",
) -> Path:
    """Write the prioritiser's HTML report: summary, top galaxies, learning curve and cycles.

    Args:
        path: where to write the ``.html`` file; parent folders are created, and the file is
            replaced atomically so a reader never sees half a report.
        top_galaxies: one row per galaxy with ``rank``, ``id_str``, ``file_loc`` (a JPEG/PNG
            path), ``score``, ``selection``, ``mi_<question>`` for each of
            ``schema.question_names`` and ``<label_col>_fraction`` for each of
            ``schema.label_cols``. Shown as cards ordered by rank.
        cycles: one row per cycle with ``id``, ``kind``, ``started_at``, ``ended_at``,
            ``status``, ``stage``, ``counts`` (dict), ``metrics`` (dict) and ``error``; shown
            as a table in the order given.
        learning_curve: one row per model version with ``version``, ``n_labelled``,
            ``validation_loss``, ``baseline_loss`` (may be NaN), ``deployed`` (bool) and
            ``status``.
        schema: the decision tree the predictions follow.
        title: the page title.

    Returns:
        The path written.

    Raises:
        PrioritiserError: if a frame is not a DataFrame or lacks a required column (the message
            names the frame and the columns).
    """
    _check_frame(top_galaxies, "top_galaxies", _galaxy_columns(schema))
    _check_frame(cycles, "cycles", _CYCLE_COLUMNS)
    _check_frame(learning_curve, "learning_curve", _CURVE_COLUMNS)
    galaxies = top_galaxies.sort_values("rank", kind="stable")
    body = "\n".join(
        [
            f"<main>\n<h1>{_esc(title)}</h1>",
            _render_summary(galaxies, cycles, learning_curve),
            f"<h2>Top galaxies</h2>\n{_render_cards(galaxies, schema)}",
            f'<h2>Learning curve</h2>\n<div class="curve">{_render_curve(learning_curve)}</div>',
            f"<h2>Cycles</h2>\n{_render_cycles(cycles)}\n</main>",
        ]
    )
    page = _render_page(title, body)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, target)
    logger.info("report written path=%s galaxies=%d bytes=%d", target, len(galaxies), len(page))
    return target


def _galaxy_columns(schema: Schema) -> list[str]:
    mi_columns = [f"mi_{name}" for name in schema.question_names]
    return [*_GALAXY_COLUMNS, *mi_columns, *(f"{col}_fraction" for col in schema.label_cols)]


def _check_frame(frame: Any, name: str, required: Iterable[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise PrioritiserError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise PrioritiserError(
            f"{name} is missing column(s) {', '.join(map(repr, missing))}; add them before "
            f"calling write_report (it has: {', '.join(map(str, frame.columns)) or 'none'})"
        )


def _render_page(title: str, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    policy = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def _render_summary(galaxies: pd.DataFrame, cycles: pd.DataFrame, curve: pd.DataFrame) -> str:
    n_random = int((galaxies["selection"] == "random_selection").sum())
    stats = [(str(len(galaxies)), f"galaxies shown ({n_random} random control)", "")]
    if len(cycles):
        last = cycles.sort_values("id", kind="stable").iloc[-1]
        status = _text(last["status"])
        tone = _STATUS_CLASSES.get(status, "")
        detail = f"last cycle #{_text(last['id'])} {_text(last['kind'])}"
        if tone != "ok":
            detail += f", stage {_text(last['stage'])}"
        stats.append((status, detail, tone))
    else:
        stats.append(("none", "cycles run", ""))
    deployed = curve[curve["deployed"].fillna(False).astype(bool)].sort_values("version")
    if len(deployed):
        row = deployed.iloc[-1]
        detail = f"loss {_number(row['validation_loss'])}, {_text(row['n_labelled'])} labelled"
        stats.append((f"v{_text(row['version'])}", f"deployed model ({detail})", ""))
    else:
        stats.append(("none", "deployed model", ""))
    items = "".join(
        f'<div class="stat {tone}"><b>{_esc(value)}</b><span>{_esc(label)}</span></div>'
        for value, label, tone in stats
    )
    return f'<section class="summary">{items}</section>'


def _render_cards(galaxies: pd.DataFrame, schema: Schema) -> str:
    if galaxies.empty:
        return '<p class="empty">No galaxies scored yet.</p>'
    fraction_columns = [f"{col}_fraction" for col in schema.label_cols]
    fractions = galaxies[fraction_columns].to_numpy(dtype=float)  # [n_galaxies, n_answers]
    asked = schema.question_asked_probability(np.nan_to_num(fractions))  # [n_galaxies, n_questions]
    cards = [
        _render_card(row, schema, fractions[i], asked[i])
        for i, (_, row) in enumerate(galaxies.iterrows())
    ]
    return f'<div class="cards">\n{"".join(cards)}</div>'


def _render_card(row: pd.Series, schema: Schema, fractions: np.ndarray, asked: np.ndarray) -> str:
    selection = _text(row["selection"])
    chip_class = _SELECTION_CLASSES.get(selection, "")
    mutual_information = {name: row[f"mi_{name}"] for name in schema.question_names}
    ranked = sorted(
        ((name, float(value)) for name, value in mutual_information.items() if _is_finite(value)),
        key=lambda item: -item[1],
    )[:_TOP_MI]
    mi_items = "".join(
        f"<li><span>{_esc(name)}</span><span>{value:.3f}</span></li>" for name, value in ranked
    )
    shown = [i for i in np.flatnonzero(asked >= _ASKED_THRESHOLD)][:MAX_QUESTIONS_SHOWN]
    questions = "".join(
        _render_question(schema, i, fractions[schema.question_slices[i]]) for i in shown
    )
    return (
        f'<article class="card" id="galaxy-{_esc(row["rank"])}">\n<header>'
        f'<span class="rank">#{_esc(row["rank"])}</span>'
        f'<span class="gid">{_esc(row["id_str"])}</span>'
        f'<span class="chip {chip_class}">{_esc(selection)}</span></header>\n'
        f'<div class="top">{_render_image(row["file_loc"], _text(row["id_str"]))}'
        f'<div><div class="label">score</div><div class="score">{_number(row["score"])}</div>'
        f'<div class="label">top questions by mutual information</div>'
        f'<ul class="mi">{mi_items}</ul></div></div>\n{questions}</article>\n'
    )


def _render_question(schema: Schema, index: int, fractions: np.ndarray) -> str:
    question = schema.questions[index]
    best = int(np.nanargmax(fractions)) if np.isfinite(fractions).any() else -1
    rows = []
    for j, (answer, value) in enumerate(zip(question.answers, fractions)):
        width = 0.0 if not math.isfinite(value) else min(max(value, 0.0), 1.0) * 100
        shown = f"{value:.2f}" if math.isfinite(value) else "-"
        rows.append(
            f'<div class="a{" best" if j == best else ""}">'
            f'<span class="name" title="{_esc(answer.name)}">{_esc(answer.text)}</span>'
            f'<span class="bar"><i style="width:{width:.1f}%"></i></span>'
            f'<span class="v">{shown}</span></div>'
        )
    return f'<div class="q"><h3>{_esc(question.name)}</h3>{"".join(rows)}</div>'


def _render_image(file_loc: Any, id_str: str) -> str:
    uri = _image_data_uri(Path(str(file_loc)))
    if uri is None:
        return '<div class="noimg">no image</div>'
    return f'<img src="{uri}" alt="galaxy {_esc(id_str)}" width="128" height="128">'


def _image_data_uri(path: Path) -> str | None:
    """Base64 data URI of the image, shrunk to THUMBNAIL_SIZE; None (logged) if unreadable."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.format in {"JPEG", "PNG"} and max(image.size) <= THUMBNAIL_SIZE:
                raw, mime = path.read_bytes(), f"image/{image.format.lower()}"
            else:
                thumbnail = image.convert("RGB")
                thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                buffer = io.BytesIO()
                thumbnail.save(buffer, format="JPEG", quality=85)
                raw, mime = buffer.getvalue(), "image/jpeg"
    except (OSError, UnidentifiedImageError) as error:
        logger.warning("report image unreadable path=%s error=%s", path, error)
        return None
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _render_curve(curve: pd.DataFrame) -> str:
    if curve.empty:
        return '<p class="empty">No model versions trained yet.</p>'
    figure = Figure(figsize=(8, 3.6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ordered = curve.sort_values(["n_labelled", "version"], kind="stable")
    x = ordered["n_labelled"].to_numpy(dtype=float)
    axes.plot(x, ordered["validation_loss"].to_numpy(dtype=float), color="#c3cad6", zorder=1)
    deployed = ordered["deployed"].fillna(False).astype(bool).to_numpy()
    rejected = (ordered["status"].astype(str) == "rejected").to_numpy() & ~deployed
    groups = [
        (deployed, "o", "#2f9e44", "deployed"),
        (rejected, "X", "#e03131", "rejected"),
        (~deployed & ~rejected, "s", "#868e96", "other"),
    ]
    for mask, marker, colour, label in groups:
        if mask.any():
            axes.scatter(
                x[mask],
                ordered["validation_loss"].to_numpy(dtype=float)[mask],
                marker=marker,
                s=55,
                color=colour,
                label=label,
                zorder=3,
            )
    baseline = ordered["baseline_loss"].to_numpy(dtype=float)
    if np.isfinite(baseline).any():
        axes.plot(
            x,
            baseline,
            linestyle="--",
            marker=".",
            color="#4c6ef5",
            label="baseline (previous model)",
            zorder=2,
        )
    for version, xv, yv in zip(
        ordered["version"], x, ordered["validation_loss"].to_numpy(dtype=float)
    ):
        axes.annotate(
            f"v{version}", (xv, yv), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    axes.set_xlabel("labelled galaxies")
    axes.set_ylabel("validation loss")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = "validation loss against labelled galaxies"
    return f'<img src="data:image/png;base64,{encoded}" alt="{alt}">'


def _render_cycles(cycles: pd.DataFrame) -> str:
    if cycles.empty:
        return '<p class="empty">No cycles run yet.</p>'
    header = "".join(f"<th>{name}</th>" for name in _CYCLE_COLUMNS)
    rows = []
    for _, row in cycles.iterrows():
        status = _text(row["status"])
        cells = [
            _esc(row["id"]),
            _esc(row["kind"]),
            f'<span class="time">{_esc(_timestamp(row["started_at"]))}</span>',
            f'<span class="time">{_esc(_timestamp(row["ended_at"]))}</span>',
            f'<span class="pill {_STATUS_CLASSES.get(status, "")}">{_esc(status)}</span>',
            _esc(row["stage"]),
        ]
        mappings = [f'<td class="kv">{_mapping(row[name])}</td>' for name in ("counts", "metrics")]
        error = f'<td class="err">{_esc(row["error"])}</td>'
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "".join(mappings) + error)
    return (
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n"
        + "</tr>\n".join(rows)
        + ("</tr>\n</tbody>\n</table>")
    )


def _mapping(value: Any) -> str:
    """Key = value lines of a dict (or of a JSON object string), escaped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _esc(value)
    if not isinstance(value, Mapping):
        return _esc(value)
    lines = [f"{_esc(key)} = {_esc(_number(item))}" for key, item in value.items()]
    return "<br>".join(lines)


def _timestamp(value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            return stamp.strftime("%Y-%m-%d %H:%M:%S")
        return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float | np.floating):
        return _text(value)
    return f"{value:.4g}"


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float | np.floating) and math.isnan(value))
        or (value is pd.NaT)
    )


def _is_finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _esc(value: Any) -> str:
    return html.escape(_text(value), quote=True)
