"""A self-contained HTML report of the prioritiser: top galaxies, cycles and the learning curve.

The report is one HTML5 file with every image embedded as a base64 data URI and no external
resource, so it can be mailed or opened on an offline machine. A Content-Security-Policy in the
page forbids any network fetch, and the one inline script (allowed by its hash) marks on ``<body>``
how many images decoded, which lets a headless browser check the page. This module builds the
page's sections; ``prioritiser._report_html`` holds the page shell and the escaping of values.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from prioritiser._report_html import (
    esc,
    is_finite,
    mapping,
    number,
    render_page,
    text,
    timestamp,
)
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
            f"<main>\n<h1>{esc(title)}</h1>",
            _render_summary(galaxies, cycles, learning_curve),
            f"<h2>Top galaxies</h2>\n{_render_cards(galaxies, schema)}",
            f'<h2>Learning curve</h2>\n<div class="curve">{_render_curve(learning_curve)}</div>',
            f"<h2>Cycles</h2>\n{_render_cycles(cycles)}\n</main>",
        ]
    )
    page = render_page(title, body)
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


def _render_summary(galaxies: pd.DataFrame, cycles: pd.DataFrame, curve: pd.DataFrame) -> str:
    n_random = int((galaxies["selection"] == "random_selection").sum())
    stats = [(str(len(galaxies)), f"galaxies shown ({n_random} random control)", "")]
    if len(cycles):
        last = cycles.sort_values("id", kind="stable").iloc[-1]
        status = text(last["status"])
        tone = _STATUS_CLASSES.get(status, "")
        detail = f"last cycle #{text(last['id'])} {text(last['kind'])}"
        if tone != "ok":
            detail += f", stage {text(last['stage'])}"
        stats.append((status, detail, tone))
    else:
        stats.append(("none", "cycles run", ""))
    deployed = curve[curve["deployed"].fillna(False).astype(bool)].sort_values("version")
    if len(deployed):
        row = deployed.iloc[-1]
        detail = f"loss {number(row['validation_loss'])}, {text(row['n_labelled'])} labelled"
        stats.append((f"v{text(row['version'])}", f"deployed model ({detail})", ""))
    else:
        stats.append(("none", "deployed model", ""))
    items = "".join(
        f'<div class="stat {tone}"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
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
    selection = text(row["selection"])
    chip_class = _SELECTION_CLASSES.get(selection, "")
    mutual_information = {name: row[f"mi_{name}"] for name in schema.question_names}
    ranked = sorted(
        ((name, float(value)) for name, value in mutual_information.items() if is_finite(value)),
        key=lambda item: -item[1],
    )[:_TOP_MI]
    mi_items = "".join(
        f"<li><span>{esc(name)}</span><span>{value:.3f}</span></li>" for name, value in ranked
    )
    shown = [i for i in np.flatnonzero(asked >= _ASKED_THRESHOLD)][:MAX_QUESTIONS_SHOWN]
    questions = "".join(
        _render_question(schema, i, fractions[schema.question_slices[i]]) for i in shown
    )
    return (
        f'<article class="card" id="galaxy-{esc(row["rank"])}">\n<header>'
        f'<span class="rank">#{esc(row["rank"])}</span>'
        f'<span class="gid">{esc(row["id_str"])}</span>'
        f'<span class="chip {chip_class}">{esc(selection)}</span></header>\n'
        f'<div class="top">{_render_image(row["file_loc"], text(row["id_str"]))}'
        f'<div><div class="label">score</div><div class="score">{number(row["score"])}</div>'
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
            f'<span class="name" title="{esc(answer.name)}">{esc(answer.text)}</span>'
            f'<span class="bar"><i style="width:{width:.1f}%"></i></span>'
            f'<span class="v">{shown}</span></div>'
        )
    return f'<div class="q"><h3>{esc(question.name)}</h3>{"".join(rows)}</div>'


def _render_image(file_loc: Any, id_str: str) -> str:
    uri = _image_data_uri(Path(str(file_loc)))
    if uri is None:
        return '<div class="noimg">no image</div>'
    return f'<img src="{uri}" alt="galaxy {esc(id_str)}" width="128" height="128">'


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
        status = text(row["status"])
        cells = [
            esc(row["id"]),
            esc(row["kind"]),
            f'<span class="time">{esc(timestamp(row["started_at"]))}</span>',
            f'<span class="time">{esc(timestamp(row["ended_at"]))}</span>',
            f'<span class="pill {_STATUS_CLASSES.get(status, "")}">{esc(status)}</span>',
            esc(row["stage"]),
        ]
        mappings = [f'<td class="kv">{mapping(row[name])}</td>' for name in ("counts", "metrics")]
        error = f'<td class="err">{esc(row["error"])}</td>'
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "".join(mappings) + error)
    return (
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n"
        + "</tr>\n".join(rows)
        + ("</tr>\n</tbody>\n</table>")
    )
