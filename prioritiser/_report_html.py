"""The HTML shell of the prioritiser's report and the escaping of values shown in it.

``render_page`` wraps a body in a complete HTML5 page with the report's stylesheet, a
Content-Security-Policy that forbids any network fetch, and the one inline script (allowed by its
hash) that marks on ``<body>`` how many images decoded. The other helpers turn cell values
(numbers, timestamps, dicts, missing values) into escaped HTML text. ``prioritiser.report`` builds
the page's sections with them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["esc", "is_finite", "mapping", "number", "render_page", "text", "timestamp"]

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


def render_page(title: str, body: str) -> str:
    """The complete HTML page: ``body`` with the stylesheet, the CSP and the image-count script."""
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    policy = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def mapping(value: Any) -> str:
    """Key = value lines of a dict (or of a JSON object string), escaped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return esc(value)
    if not isinstance(value, Mapping):
        return esc(value)
    lines = [f"{esc(key)} = {esc(number(item))}" for key, item in value.items()]
    return "<br>".join(lines)


def timestamp(value: Any) -> str:
    """A datetime as ``YYYY-MM-DD HH:MM:SS`` (in UTC when it has a zone); "" when missing."""
    if _is_missing(value):
        return ""
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            return stamp.strftime("%Y-%m-%d %H:%M:%S")
        return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def number(value: Any) -> str:
    """A float to 4 significant figures; anything else as ``text``."""
    if isinstance(value, bool) or not isinstance(value, float | np.floating):
        return text(value)
    return f"{value:.4g}"


def _is_missing(value: Any) -> bool:
    """Whether the value is None, NaN or NaT."""
    return (
        value is None
        or (isinstance(value, float | np.floating) and math.isnan(value))
        or (value is pd.NaT)
    )


def is_finite(value: Any) -> bool:
    """Whether the value converts to a finite float."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def text(value: Any) -> str:
    """The value as a string; "" when missing."""
    return "" if _is_missing(value) else str(value)


def esc(value: Any) -> str:
    """The value as HTML-escaped text (quotes included); "" when missing."""
    return html.escape(text(value), quote=True)
