"""How `make test` shares the suite between pytest-xdist workers: a test file is one unit of
work, so its servers start on one worker only; the tiers that load the whole machine (kill -9,
outages, failovers, wrk) are one unit together, run one file after another and handed out
first, so that the other workers' files fill the time they take."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from xdist.scheduler import LoadScopeScheduling

MACHINE_LOAD_TIERS = {"reliability", "harnesses"}
MACHINE_LOAD = "machine-load"


def work_unit(nodeid: str) -> str:
    """The unit of a test, from its node id (`tests/<tier>/<file>.py::<test>`)."""
    path = PurePosixPath(nodeid.split("::", 1)[0])
    return MACHINE_LOAD if path.parts[1] in MACHINE_LOAD_TIERS else str(path)


def machine_load_first(items: list[pytest.Item]) -> None:
    """Order the collection so that the machine-load unit is the first handed out (`make test`
    keeps the collection's order with `--no-loadscope-reorder`)."""
    items.sort(key=lambda item: work_unit(item.nodeid) != MACHINE_LOAD)


class WorkUnitScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """pytest-xdist's scope scheduling, with `work_unit` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)
