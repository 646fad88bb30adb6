import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import request
from sqlalchemy import func, select, text

from panoptes_sync.emulator import FaultRule, serve_emulator
from panoptes_sync.store import Classification, session_scope
from prioritiser.cli import main
from prioritiser.config import load_config
from prioritiser.daemon import Daemon, prepare_store
from prioritiser.errors import DaemonLockedError
from prioritiser.history import read_status
from prioritiser.lock import acquire_lock, check_lock
from prioritiser.prediction_files import read_predictions
from prioritiser.records import Cycle, ModelVersion, Prediction
from tests.panoptes_sync.emulator_fixtures import reset_panoptes_client, small_settings
from zoobot.schemas import decals_dr5_schema

pytestmark = pytest.mark.timeout(600)

LOGIN, PASSWORD = "owner", "secret"
HOLD_LOCK = """
import sys, time
from prioritiser.daemon import prepare_store
from prioritiser.lock import acquire_lock, check_lock
acquire_lock(prepare_store(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def _emulator_settings(tmp_path: Path, **overrides):
    values = {
        "subjects": 40,
        "classifications": 160,
        "retirement_count": 6,
        "prioritized": True,
        "image_size": 32,
    }
    return small_settings(tmp_path, **{**values, **overrides})


def _write_config(tmp_path: Path, emulator, **prioritiser) -> Path:
    values = {
        "workdir": str(tmp_path / "work"),
        "encoder": "test_resnet",
        "image_size": 32,
        "n_models": 1,
        "n_samples": 2,
        "max_epochs": 1,
        "batch_size": 16,
        "labelled_min_votes": 3,
        "push_size": 6,
        "sync_interval_s": 1.0,
        "retrain_interval_s": 2.0,
        "retrain_min_new_labelled": 0,
        "seed": 0,
        **prioritiser,
    }
    lines = [
        "[panoptes_sync]",
        f'database_url = "sqlite:///{tmp_path / "zoo.sqlite3"}"',
        f'endpoint = "{emulator.endpoint}"',
        f"project_id = {emulator.project_id}",
        f"workflow_id = {emulator.workflow_id}",
        "",
        "[prioritiser]",
    ]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
    path = tmp_path / "daemon.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("ZOO_PANOPTES_USERNAME", LOGIN)
    monkeypatch.setenv("ZOO_PANOPTES_PASSWORD", PASSWORD)
    reset_panoptes_client()
    yield
    reset_panoptes_client()


def _retrains(engine):
    with session_scope(engine) as session:
        return [
            (c.status, c.stage, c.counts)
            for c in session.execute(select(Cycle).where(Cycle.kind == "retrain")).scalars()
        ]


def test_daemon_runs_two_full_cycles_on_a_short_schedule(tmp_path, credentials):
    with serve_emulator(_emulator_settings(tmp_path, volunteer_rate_per_s=3.0)) as emulator:
        config = load_config(_write_config(tmp_path, emulator), env=os.environ)
        daemon = Daemon(config, trainer_kwargs={"accelerator": "cpu"}, max_retrains=2)
        daemon.serve()
        emulator_ids = set(emulator.classification_ids())
    retrains = _retrains(daemon.engine)
    assert [status for status, _, _ in retrains] == ["done", "done"], retrains
    assert all(counts["pushed"] == 6 for _, _, counts in retrains), retrains
    with session_scope(daemon.engine) as session:
        stored = session.execute(select(func.count()).select_from(Classification)).scalar()
        versions = session.execute(select(ModelVersion)).scalars().all()
        assert len(versions) == 2 and sum(v.deployed for v in versions) == 1
        predictions = session.execute(select(Prediction)).scalars().all()
        files = {
            c.id: c.metrics["predictions_file"]
            for c in session.execute(select(Cycle).where(Cycle.kind == "retrain")).scalars()
        }
    assert 0 < stored <= len(emulator_ids)
    assert {p.cycle_id for p in predictions} == set(files) and len(files) == 2
    for cycle_id, path in files.items():
        ranked = read_predictions(path)
        assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
        assert ranked["score"].is_monotonic_decreasing
        assert {f"mi_{q}" for q in decals_dr5_schema.question_names} <= set(ranked.columns)
        selected = [p for p in predictions if p.cycle_id == cycle_id]
        assert len(selected) == 6 and all(p.selection is not None for p in selected)
        by_subject = ranked.set_index("subject_id")
        assert [p.rank for p in selected] == by_subject.loc[
            [p.subject_id for p in selected], "rank"
        ].tolist()
        assert set(selected[0].mutual_information) == set(decals_dr5_schema.question_names)
        assert len(selected[0].vote_fractions) == len(decals_dr5_schema.label_cols)
    cycles, _ = read_status(config.sync.database_url)
    assert set(cycles["kind"]) >= {"retrain"}
    assert set(cycles.loc[cycles["kind"] == "retrain", "predictions"]) == set(files.values())


def test_a_second_instance_on_the_same_database_refuses_to_start(tmp_path, credentials):
    with serve_emulator(_emulator_settings(tmp_path)) as emulator:
        config_path = _write_config(tmp_path, emulator)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLD_LOCK,
                f"sqlite:///{tmp_path / 'zoo.sqlite3'}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "locked"
            config = load_config(config_path, env=os.environ)
            with pytest.raises(DaemonLockedError, match=f"pid {holder.pid}.*stop it first"):
                Daemon(config).serve()
            result = subprocess.run(
                [sys.executable, "-m", "prioritiser", "run", "--config", str(config_path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 1
            assert "another prioritiser daemon" in result.stderr
        finally:
            holder.kill()
            holder.wait()
        acquire_lock(Daemon(config).engine)


def _stage(database: Path) -> str | None:
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            row = connection.execute(
                "SELECT stage FROM prioritiser_cycles WHERE kind='retrain' ORDER BY id DESC"
            ).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def test_sigkill_mid_cycle_then_restart_pushes_nothing_twice_and_loses_nothing(
    tmp_path, credentials
):
    with serve_emulator(_emulator_settings(tmp_path)) as emulator:
        config_path = _write_config(tmp_path, emulator)
        command = [
            sys.executable,
            "-m",
            "prioritiser",
            "run",
            "--config",
            str(config_path),
            "--max-retrains",
            "1",
        ]
        first = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while (
            _stage(tmp_path / "zoo.sqlite3") not in ("push", "pushed")
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = _stage(tmp_path / "zoo.sqlite3")
        assert killed_at in ("push", "pushed")
        second = subprocess.run(command, stderr=subprocess.PIPE, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        sets = emulator.query("SELECT id, display_name FROM subject_sets")
        pushed_sets = [s for s in sets if s["display_name"].startswith("prioritised cycle")]
        members = emulator.query(
            "SELECT subject_set_id, subject_id, COUNT(*) AS n FROM set_member_subjects "
            "GROUP BY subject_set_id, subject_id HAVING n > 1"
        )
        emulator_ids = set(emulator.classification_ids())
    names = [s["display_name"] for s in pushed_sets]
    assert len(names) == len(set(names)), names
    assert "prioritised cycle 1" in names
    assert members == []
    config = load_config(config_path, env=os.environ)
    engine = Daemon(config).engine
    retrains = _retrains(engine)
    assert retrains[0][0] == "done" and retrains[0][2]["pushed"] == 6
    with session_scope(engine) as session:
        stored = set(session.execute(select(Classification.id)).scalars())
    assert stored == emulator_ids


def _lock_pid(database: Path) -> int | None:
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            row = connection.execute("SELECT pid FROM prioritiser_daemon_lock").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def test_sigterm_mid_push_keeps_the_lock_until_the_push_stops_and_nothing_is_sent_twice(
    tmp_path, credentials
):
    slow_members = FaultRule(route="set_member_subjects", kind="latency", latency_s=2.0)
    settings = _emulator_settings(tmp_path, faults=[slow_members])
    with serve_emulator(settings) as emulator:
        priority_puts: list[str] = []

        @emulator.app.after_request
        def record(response):
            if request.method == "PUT" and request.path.startswith("/api/set_member_subjects/"):
                if response.status_code < 300:
                    priority_puts.append(request.path)
            return response

        config_path = _write_config(tmp_path, emulator)
        database = tmp_path / "zoo.sqlite3"
        command = [sys.executable, "-m", "prioritiser", "run", "--config", str(config_path)]
        first = subprocess.Popen([*command, "--max-retrains", "1"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not priority_puts and time.monotonic() < deadline:
            time.sleep(0.02)
        stage = None
        while stage is None and time.monotonic() < deadline:  # None: the file was busy
            stage = _stage(database)
        assert stage == "push"
        first.send_signal(signal.SIGTERM)
        second = subprocess.Popen(
            [*command, "--max-retrains", "1"], stderr=subprocess.PIPE, text=True
        )
        holders = []
        while first.poll() is None:
            holders.append(_lock_pid(database))
            time.sleep(0.02)
        assert first.wait() == 0
        # The first gives the lock up (None) before it exits, once its job has stopped; another
        # process may take it in the moment before the exit, never straight from the first.
        owners = [
            pid for index, pid in enumerate(holders) if index == 0 or pid != holders[index - 1]
        ]
        assert owners[0] == first.pid and owners[:2] in ([first.pid], [first.pid, None]), owners
        _, second_err = second.communicate(timeout=300)
        assert second.returncode in (0, 1), second_err[-2000:]
        if second.returncode == 1:
            assert "another prioritiser daemon" in second_err
            finish = subprocess.run(
                [*command, "--once"], stderr=subprocess.PIPE, text=True, timeout=300
            )
            assert finish.returncode == 0, finish.stderr[-2000:]
        sets = emulator.query("SELECT display_name FROM subject_sets")
        duplicated_members = emulator.query(
            "SELECT subject_set_id, subject_id, COUNT(*) AS n FROM set_member_subjects "
            "GROUP BY subject_set_id, subject_id HAVING n > 1"
        )
    names = [s["display_name"] for s in sets if s["display_name"].startswith("prioritised")]
    assert names.count("prioritised cycle 1") == 1
    assert duplicated_members == []
    assert len(priority_puts) == len(set(priority_puts)), priority_puts
    engine = Daemon(load_config(config_path, env=os.environ)).engine
    first_cycle = _retrains(engine)[0]
    assert first_cycle[0] == "done" and first_cycle[2]["pushed"] == 6


def test_a_retrain_that_makes_the_model_worse_is_not_deployed(tmp_path, credentials):
    with serve_emulator(_emulator_settings(tmp_path)) as emulator:
        good = load_config(_write_config(tmp_path, emulator, max_epochs=2), env=os.environ)
        daemon = Daemon(good, trainer_kwargs={"accelerator": "cpu"})
        daemon.run("retrain")
        bad = load_config(
            _write_config(tmp_path, emulator, learning_rate=50.0, n_blocks=-1), env=os.environ
        )
        Daemon(bad, trainer_kwargs={"accelerator": "cpu"}).run("retrain")
    with session_scope(daemon.engine) as session:
        versions = session.execute(select(ModelVersion).order_by(ModelVersion.id)).scalars().all()
        assert [v.status for v in versions] == ["accepted", "rejected"]
        assert [v.deployed for v in versions] == [True, False]
        assert versions[1].validation_loss > versions[1].baseline_loss
    config_path = tmp_path / "daemon.toml"
    assert main(["rollback", "--config", str(config_path), "--version", "2"]) == 0
    with session_scope(daemon.engine) as session:
        deployed = session.execute(select(ModelVersion.id).where(ModelVersion.deployed)).scalars()
        assert list(deployed) == [2]
    assert main(["rollback", "--config", str(config_path), "--version", "9"]) == 1


def test_status_prints_cycles_and_model_versions(tmp_path, credentials, capsys):
    with serve_emulator(_emulator_settings(tmp_path)) as emulator:
        config_path = _write_config(tmp_path, emulator)
        Daemon(load_config(config_path, env=os.environ), trainer_kwargs={"accelerator": "cpu"}).run(
            "sync"
        )
    assert main(["status", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "sync" in out and "done" in out
    assert "no model versions yet" in out


def test_run_once_exits_non_zero_naming_the_failing_stage_and_the_error(
    tmp_path, credentials, capsys
):
    with serve_emulator(_emulator_settings(tmp_path)) as emulator:
        config_path = _write_config(tmp_path, emulator, encoder="no_such_encoder")
        assert main(["run", "--config", str(config_path), "--once"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: CycleFailed: cycle 1 failed in stage 'train'"), err
    assert "no_such_encoder" in err
    engine = Daemon(load_config(config_path, env=os.environ)).engine
    assert _retrains(engine)[0][0] == "failed"
    acquire_lock(engine)


def test_a_daemon_that_lost_its_lock_stops_before_its_next_write(tmp_path):
    engine = prepare_store(f"sqlite:///{tmp_path / 'zoo.sqlite3'}")
    acquire_lock(engine)
    check_lock(engine)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE prioritiser_daemon_lock SET pid = :pid"), {"pid": holder.pid}
            )
        with pytest.raises(DaemonLockedError, match=f"no longer holds .*pid {holder.pid}"):
            check_lock(engine)
        with pytest.raises(DaemonLockedError, match=f"pid {holder.pid}"):
            acquire_lock(engine)
    finally:
        holder.kill()
        holder.wait()
    acquire_lock(engine)
    check_lock(engine)
