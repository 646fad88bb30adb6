"""Strict JSON: NaN and infinities are written as null, and nothing writes them bare."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from zoobot import strict_json


def _strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null():
    frame = pd.DataFrame({"loss": [0.5, None], "n": [1, 2]})
    value = {
        "nan": math.nan,
        "inf": [float("inf"), -math.inf],
        "numpy": np.float32("nan"),
        "array": np.array([1.0, np.nan]),
        "records": frame.to_dict(orient="records"),
        "int": np.int64(3),
        "nested": ({"x": np.float64(2.5)},),
    }
    parsed = _strict_loads(strict_json.dumps(value, indent=2))
    assert parsed == {
        "nan": None,
        "inf": [None, None],
        "numpy": None,
        "array": [1.0, None],
        "records": [{"loss": 0.5, "n": 1}, {"loss": None, "n": 2}],
        "int": 3,
        "nested": [{"x": 2.5}],
    }


def test_the_store_writes_strict_json(tmp_path):
    from sqlalchemy import text

    from panoptes_sync.store import create_engine_for_url, session_scope
    from prioritiser.records import Cycle, create_tables

    engine = create_engine_for_url(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    create_tables(engine)
    with session_scope(engine) as session:
        session.add(Cycle(kind="retrain", metrics={"loss": math.nan, "n": 3}, counts={"a": 1}))
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT metrics, counts FROM prioritiser_cycles")).one()
    assert _strict_loads(raw[0]) == {"loss": None, "n": 3}
    assert raw[1] == '{"a":1}'
