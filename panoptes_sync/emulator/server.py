"""Serving the emulator: a threaded werkzeug server in a background thread, plus test helpers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from panoptes_sync.emulator.answers import AnswerModel, RandomTreeAnswerModel
from panoptes_sync.emulator.app import create_app
from panoptes_sync.emulator.context import EmulatorContext
from panoptes_sync.emulator.database import EmulatorClock, EmulatorDatabase, loads
from panoptes_sync.emulator.faults import FaultInjector
from panoptes_sync.emulator.seed import seed_state
from panoptes_sync.emulator.settings import EmulatorSettings
from panoptes_sync.emulator.volunteers import VolunteerSimulator, VolunteerThread
from panoptes_sync.errors import EmulatorStartupError

__all__ = ["EmulatorServer", "serve_emulator"]

logger = logging.getLogger(__name__)

#: How often the serving thread checks for shutdown (short, so tests stop quickly).
POLL_INTERVAL_S = 0.05


class EmulatorServer:
    """A running (or ready to run) emulator on a loopback port.

    Args:
        settings: the emulator settings.
        host: interface to bind.
        port: port to bind (0: a free port).
        clock: the emulator's clock (tests advance it to expire tokens).
        answer_model: how subjects look and volunteers answer (default: seeded random tree walks).
    """

    def __init__(
        self,
        settings: EmulatorSettings,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: EmulatorClock | None = None,
        answer_model: AnswerModel | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or EmulatorClock()
        self.database = EmulatorDatabase(settings.state_path, self.clock)
        self.context = EmulatorContext(
            settings=settings,
            database=self.database,
            clock=self.clock,
            faults=FaultInjector(settings.faults, settings.seed),
        )
        self.answer_model = answer_model or self._default_answer_model()
        self.context.answer_model = self.answer_model
        seed_state(self.database, settings, self.answer_model)
        self.volunteers = VolunteerSimulator(
            self.database, self.answer_model, settings.workflow_id, settings.seed
        )
        self.app = create_app(self.context)
        try:
            self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        except OSError as error:
            raise EmulatorStartupError(
                f"cannot bind the emulator to {host}:{port}: {error}; choose another --port"
            ) from error
        self._thread: threading.Thread | None = None
        self._volunteer_thread: VolunteerThread | None = None

    def _default_answer_model(self) -> AnswerModel:
        row = self.database.query_one(
            "SELECT tasks, first_task FROM workflows WHERE id = ?", (self.settings.workflow_id,)
        )
        if row is not None:
            tasks, first_task = loads(row["tasks"]), row["first_task"]
        else:
            from panoptes_sync.emulator.seed import workflow_definition

            definition = workflow_definition()
            tasks, first_task = definition["tasks"], definition["first_task"]
        settings = self.settings
        if settings.answer_model == "simulated":
            try:
                from panoptes_sync.emulator.answers_simulated import SimulatedGalaxyAnswerModel

                return SimulatedGalaxyAnswerModel(
                    tasks, first_task, settings.seed, settings.image_size
                )
            except ImportError as error:
                logger.warning(
                    "galaxy simulator unavailable (%s); using random tree walks instead", error
                )
        return RandomTreeAnswerModel(tasks, first_task, settings.seed, settings.image_size)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash), what ``Panoptes.connect`` takes."""
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.port)

    @property
    def project_id(self) -> int:
        """Id of the seeded project."""
        return self.settings.project_id

    @property
    def workflow_id(self) -> int:
        """Id of the seeded workflow (GZ DECaLS DR5 tree)."""
        return self.settings.workflow_id

    @property
    def project_slug(self) -> str:
        """Slug of the seeded project."""
        return self.settings.project_slug

    @property
    def counters(self) -> dict[str, int]:
        """Observability counters, e.g. ``grant:refresh_token`` token grants."""
        return dict(self.context.counters)

    def classification_ids(self) -> list[int]:
        """Sorted ids of every classification in the state."""
        rows = self.database.query("SELECT id FROM classifications ORDER BY id")
        return [int(row["id"]) for row in rows]

    def run_volunteers(self, n: int) -> list[int]:
        """Make ``n`` more simulated classifications now (deterministic for the seed)."""
        return self.volunteers.run(n)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (expires tokens and signed URLs without waiting)."""
        self.clock.advance(seconds)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read the emulator's state directly (for tests)."""
        return [dict(row) for row in self.database.query(sql, params)]

    def start(self) -> None:
        """Serve in a background thread (and start volunteers if a rate is set)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name="panoptes-emulator",
            daemon=True,
        )
        self._thread.start()
        if self.settings.volunteer_rate_per_s > 0:
            self._volunteer_thread = VolunteerThread(
                self.volunteers, self.settings.volunteer_rate_per_s
            )
            self._volunteer_thread.start()
        logger.info(
            "emulator serving endpoint=%s state=%s", self.endpoint, self.settings.state_path
        )

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        if self.settings.volunteer_rate_per_s > 0:
            self._volunteer_thread = VolunteerThread(
                self.volunteers, self.settings.volunteer_rate_per_s
            )
            self._volunteer_thread.start()
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop volunteers and the server, close the state."""
        if self._volunteer_thread is not None:
            self._volunteer_thread.stop()
            self._volunteer_thread = None
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self.database.close()


@contextmanager
def serve_emulator(
    settings: EmulatorSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: EmulatorClock | None = None,
    answer_model: AnswerModel | None = None,
) -> Iterator[EmulatorServer]:
    """Run an emulator on a loopback port for the duration of a ``with`` block.

    Args:
        settings: the emulator settings.
        host: interface to bind.
        port: port (0: a free one).
        clock: the emulator's clock.
        answer_model: how subjects look and volunteers answer.

    Yields:
        The running server (``endpoint``, ``project_id``, ``run_volunteers`` ...).
    """
    server = EmulatorServer(settings, host, port, clock, answer_model)
    server.start()
    try:
        yield server
    finally:
        server.stop()
