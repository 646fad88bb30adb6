"""Soak the daemon: SIGKILLs and SIGTERMs at random points of cycles, against a faulty emulator.

A Panoptes emulator (in this process, real HTTP) injects 5xx, 429, dropped connections and
latency. Daemon processes (``python -m prioritiser run``) are started one after another and
each is killed (SIGKILL) or stopped (SIGTERM) at a random point of a cycle: after a random delay,
or once its retrain cycle reaches a randomly chosen stage. Some kills are followed at once by a
second instance, started before the first has gone. Volunteers classify between kills. At the
end one clean ``run --once`` finishes what is left, and the figures are checked:

- classifications lost (in the emulator, not in the store) and duplicated (stored twice);
- subjects pushed twice (twice in one subject set, or in two sets of the same cycle);
- requests repeated for a batch another process held: a push write (set creation, links,
  set-member priority) sent by one daemon process for a cycle's subject set while another
  daemon process that had already written to that set was still alive. Each request is
  attributed to the process that sent it by its TCP connection (``/proc``), so this figure does
  not rely on the code under test.

Usage::

    python benchmarks/daemon_soak.py --kills 20 [--database-url postgresql+psycopg://...]
        [--seed 0] [--workdir DIR] [--json figures.json]

Prints the figures as JSON on stdout (and to ``--json``); exits 1 if any must-be-zero figure is
not zero. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import request
from sqlalchemy import create_engine, text

from panoptes_sync.emulator import EmulatorSettings, FaultRule, serve_emulator

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES = ("synced", "catalogued", "trained", "gated", "push")
# Half of the staged kill points fall in the push, where a second writer would do harm.
TARGETS = (*STAGES, "push", "push", "push", "push")
FAULTS = (
    FaultRule(route="classifications", status=503, rate=0.05),
    FaultRule(route="subjects", status=429, rate=0.03, retry_after_s=0),
    FaultRule(route="classifications", kind="drop", rate=0.02),
    FaultRule(route="set_member_subjects", status=503, rate=0.05),
    FaultRule(route="set_member_subjects", kind="latency", rate=1.0, latency_s=0.15),
)
LOGIN, PASSWORD = "owner", "secret"


@dataclass
class Daemon:
    """One daemon process: its pid and when it started and was seen to end."""

    process: subprocess.Popen
    started: float
    ended: float | None = None
    log: Path | None = None

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def poll(self) -> bool:
        """Reap the process if it has ended; returns whether it still runs."""
        if self.ended is None and self.process.poll() is not None:
            self.ended = time.monotonic()
        return self.ended is None


@dataclass
class Writes:
    """Push writes the emulator answered with success, attributed to the sending process."""

    daemons: list[Daemon] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    set_names: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _socket_inode(client_port: int, server_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if int(local.rsplit(":", 1)[1], 16) == client_port and (
                int(remote.rsplit(":", 1)[1], 16) == server_port
            ):
                return inode
    return None


def _sender(writes: Writes, client_port: int, server_port: int) -> int | None:
    inode = _socket_inode(client_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for daemon in list(writes.daemons):
        folder = Path(f"/proc/{daemon.pid}/fd")
        try:
            for fd in folder.iterdir():
                try:
                    if os.readlink(fd) == target:
                        return daemon.pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _subject_set(emulator: Any, writes: Writes, response: Any) -> int | None:
    """The subject set a push write concerns, or None for other writes."""
    path, method = request.path, request.method
    parts = [p for p in path.split("/") if p]
    if method == "POST" and parts == ["api", "subject_sets"]:
        body = response.get_json(silent=True) or {}
        created = (body.get("subject_sets") or [{}])[0]
        set_id = int(created["id"]) if "id" in created else None
        if set_id is not None:
            writes.set_names[set_id] = created.get("display_name", "")
        return set_id
    if method == "POST" and parts[:2] == ["api", "subject_sets"] and "links" in parts:
        return int(parts[2])
    if method == "POST" and parts[:2] == ["api", "workflows"] and parts[-1] == "subject_sets":
        linked = (request.get_json(silent=True) or {}).get("subject_sets") or []
        return int(linked[0]) if linked else None
    if method == "PUT" and parts[:2] == ["api", "set_member_subjects"]:
        rows = emulator.query(
            "SELECT subject_set_id FROM set_member_subjects WHERE id = ?", (int(parts[2]),)
        )
        return int(rows[0]["subject_set_id"]) if rows else None
    return None


def _record_writes(emulator: Any, writes: Writes) -> None:
    @emulator.app.after_request
    def record(response: Any) -> Any:
        if request.method in ("POST", "PUT") and response.status_code < 300:
            set_id = _subject_set(emulator, writes, response)
            if set_id is not None:
                port = int(request.environ.get("REMOTE_PORT", 0))
                pid = _sender(writes, port, emulator.port)
                with writes.lock:
                    writes.rows.append(
                        {
                            "t": time.monotonic(),
                            "pid": pid,
                            "set": set_id,
                            "method": request.method,
                            "path": request.path,
                        }
                    )
        return response


def _write_config(workdir: Path, emulator: Any, database_url: str) -> Path:
    lines = [
        "[panoptes_sync]",
        f'database_url = "{database_url}"',
        f'endpoint = "{emulator.endpoint}"',
        f"project_id = {emulator.project_id}",
        f"workflow_id = {emulator.workflow_id}",
        "max_retries = 8",
        "",
        "[prioritiser]",
        f'workdir = "{workdir / "work"}"',
        'encoder = "test_resnet"',
        "image_size = 32",
        "n_models = 1",
        "n_samples = 2",
        "max_epochs = 1",
        "batch_size = 16",
        "labelled_min_votes = 3",
        "push_size = 8",
        "sync_interval_s = 1.0",
        "retrain_interval_s = 2.0",
        "retrain_min_new_labelled = 0",
        "seed = 0",
    ]
    path = workdir / "daemon.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _latest_retrain(engine: Any) -> tuple[int, str] | None:
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT id, stage FROM prioritiser_cycles WHERE kind = 'retrain' "
                    "ORDER BY id DESC LIMIT 1"
                )
            ).first()
    except Exception:  # the tables may not exist yet, or SQLite is busy: try again
        return None
    return (int(row[0]), str(row[1])) if row else None


def _start(command: list[str], writes: Writes, workdir: Path) -> Daemon:
    log = workdir / f"daemon-{len(writes.daemons)}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "ZOO_PANOPTES_USERNAME": LOGIN,
        "ZOO_PANOPTES_PASSWORD": PASSWORD,
    }
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=handle, env=env)
    daemon = Daemon(process, time.monotonic(), log=log)
    with writes.lock:
        writes.daemons.append(daemon)
    return daemon


def _wait_for_point(daemon: Daemon, engine: Any, rng: random.Random, before: int) -> str:
    """Wait for a random point of a cycle; returns what it was."""
    if rng.random() < 0.5:
        delay = rng.uniform(2.0, 40.0)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and daemon.poll():
            time.sleep(0.02)
        return f"after {delay:.1f} s"
    target = rng.choice(TARGETS)
    deadline = time.monotonic() + 180.0
    while time.monotonic() < deadline and daemon.poll():
        latest = _latest_retrain(engine)
        if latest and latest[0] > before and STAGES.index(target) <= _stage_index(latest[1]):
            break
        time.sleep(0.02)
    extra = rng.uniform(0.0, 1.0)
    time.sleep(extra)
    return f"stage {target} + {extra:.2f} s"


def _stage_index(stage: str) -> int:
    order = ("start", *STAGES, "pushed")
    return order.index(stage) - 1 if stage in order else -1


def _reap_all(writes: Writes, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(d.poll() for d in writes.daemons) and time.monotonic() < deadline:
        time.sleep(0.02)
    for daemon in writes.daemons:
        if daemon.poll():
            daemon.process.kill()
            daemon.process.wait()
            daemon.poll()


def _repeated_for_held_batch(writes: Writes) -> int:
    """Writes for a set sent while another live process had already written to that set."""
    ended = {d.pid: d.ended for d in writes.daemons}
    first_write: dict[tuple[int, int], float] = {}
    repeated = 0
    for row in sorted(writes.rows, key=lambda r: r["t"]):
        if row["pid"] is None:
            continue
        for (set_id, pid), since in first_write.items():
            end = ended.get(pid)
            if (
                set_id == row["set"]
                and pid != row["pid"]
                and since < row["t"]
                and (end is None or end > row["t"])
            ):
                repeated += 1
                break
        first_write.setdefault((row["set"], row["pid"]), row["t"])
    return repeated


def _store_figures(database_url: str, emulator_ids: set[int]) -> dict[str, Any]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT COUNT(*), COUNT(DISTINCT id) FROM classifications"))
        total, distinct = rows.one()
        stored = {int(i) for (i,) in connection.execute(text("SELECT id FROM classifications"))}
        statuses = connection.execute(
            text(
                "SELECT status, COUNT(*) FROM prioritiser_cycles WHERE kind = 'retrain' "
                "GROUP BY status"
            )
        ).all()
    engine.dispose()
    return {
        "classifications_in_emulator": len(emulator_ids),
        "classifications_lost": len(emulator_ids - stored),
        "classifications_duplicated": int(total - distinct),
        "retrain_cycles": {status: int(n) for status, n in statuses},
    }


def _pushed_twice(emulator: Any) -> int:
    in_one_set = emulator.query(
        "SELECT subject_set_id, subject_id, COUNT(*) AS n FROM set_member_subjects "
        "GROUP BY subject_set_id, subject_id HAVING n > 1"
    )
    across_sets = emulator.query(
        "SELECT s.display_name AS name, m.subject_id AS subject, COUNT(*) AS n "
        "FROM set_member_subjects m JOIN subject_sets s ON s.id = m.subject_set_id "
        "WHERE s.display_name LIKE 'prioritised cycle %' "
        "GROUP BY s.display_name, m.subject_id HAVING n > 1"
    )
    return len(in_one_set) + len(across_sets)


def _kill_loop(args: argparse.Namespace, emulator: Any, writes: Writes, workdir: Path) -> dict:
    rng = random.Random(args.seed)
    config = _write_config(workdir, emulator, args.database_url)
    command = [sys.executable, "-m", "prioritiser", "run", "--config", str(config)]
    engine = create_engine(args.database_url)
    events = []
    current = _start(command, writes, workdir)
    for kill in range(args.kills):
        before = (_latest_retrain(engine) or (0, ""))[0]
        point = _wait_for_point(current, engine, rng, before)
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        at_once = rng.random() < 0.5
        stage = (_latest_retrain(engine) or (0, "none"))[1]
        if current.poll():
            current.process.send_signal(sig)
        if not at_once:
            while current.poll():
                time.sleep(0.02)
        events.append(
            {"kill": kill, "signal": sig.name, "point": point, "stage": stage, "at_once": at_once}
        )
        emulator.run_volunteers(rng.randint(5, 25))
        current = _start(command, writes, workdir)
        if at_once:
            # The instance started at once may be refused (exit 1) while the first is alive;
            # then the next one starts once both have gone.
            while writes.daemons[-2].poll():
                time.sleep(0.02)
            time.sleep(0.5)
            if not current.poll():
                current = _start(command, writes, workdir)
    current.process.send_signal(signal.SIGTERM)
    _reap_all(writes)
    engine.dispose()
    return {"events": events}


def _finish(args: argparse.Namespace, emulator: Any, writes: Writes, workdir: Path) -> int:
    config = workdir / "daemon.toml"
    command = [sys.executable, "-m", "prioritiser", "run", "--config", str(config), "--once"]
    for attempt in range(3):
        final = _start(command, writes, workdir)
        final.process.wait()
        final.poll()
        if final.process.returncode == 0:
            return attempt + 1
    raise RuntimeError(f"the final run --once failed 3 times; see {final.log}")


def _refused(writes: Writes) -> int:
    return sum(
        1
        for d in writes.daemons
        if d.log and "another prioritiser daemon" in d.log.read_text(errors="replace")
    )


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; returns its figures."""
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="daemon-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.database_url is None:
        args.database_url = f"sqlite:///{workdir / 'zoo.sqlite3'}"
    settings = EmulatorSettings(
        state_path=workdir / "emulator.sqlite3",
        subjects=args.subjects,
        classifications=args.classifications,
        login=LOGIN,
        password=PASSWORD,
        seed=args.seed,
        image_size=32,
        retirement_count=6,
        prioritized=True,
        faults=FAULTS,
    )
    started = time.monotonic()
    writes = Writes()
    with serve_emulator(settings) as emulator:
        _record_writes(emulator, writes)
        loop = _kill_loop(args, emulator, writes, workdir)
        final_attempts = _finish(args, emulator, writes, workdir)
        emulator_ids = {int(i) for i in emulator.classification_ids()}
        pushed_twice = _pushed_twice(emulator)
        faults_fired = sum(emulator.context.faults.fired)
    kills = loop["events"]
    return {
        "database": args.database_url.split(":", 1)[0],
        "kills": len(kills),
        "sigkill": sum(e["signal"] == "SIGKILL" for e in kills),
        "sigterm": sum(e["signal"] == "SIGTERM" for e in kills),
        "followed_at_once": sum(e["at_once"] for e in kills),
        "daemon_processes": len(writes.daemons),
        "starts_refused_while_holder_alive": _refused(writes),
        "faults_injected": faults_fired,
        "push_writes": len(writes.rows),
        "push_writes_unattributed": sum(r["pid"] is None for r in writes.rows),
        "subject_sets_written": len({r["set"] for r in writes.rows}),
        **_store_figures(args.database_url, emulator_ids),
        "subjects_pushed_twice": pushed_twice,
        "requests_repeated_for_batch_another_process_held": _repeated_for_held_batch(writes),
        "final_run_attempts": final_attempts,
        "wall_s": round(time.monotonic() - started, 1),
        "events": kills,
    }


MUST_BE_ZERO = (
    "classifications_lost",
    "classifications_duplicated",
    "subjects_pushed_twice",
    "requests_repeated_for_batch_another_process_held",
)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the soak, print its figures; 1 if a must-be-zero figure is not."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="daemon processes killed")
    parser.add_argument("--database-url", default=None, help="default: SQLite in --workdir")
    parser.add_argument("--seed", type=int, default=0, help="seeds kill points and faults")
    parser.add_argument("--subjects", type=int, default=60, help="emulator subjects")
    parser.add_argument("--classifications", type=int, default=200, help="seeded at start")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    figures = run_soak(args)
    text_out = json.dumps(figures, indent=2)
    print(text_out)
    if args.json:
        args.json.write_text(text_out + "\n")
    return 1 if any(figures[name] for name in MUST_BE_ZERO) else 0


if __name__ == "__main__":
    sys.exit(main())
