"""Movers: what carries the planned files of a round to the target.

The plan decides; a mover moves. The round (`engine/round.py`) walks, plans and dispatches; it
creates folders itself, through Graph, and hands each file the plan sends to the target
(`Action.UPLOAD`, `Action.ADOPT_IF_SAME`) to its mover as a `FileWork`. The mover reports what
became of each file through `RoundContext.outcomes` (`engine/outcomes.py`), the shared path that
verifies the hash Graph returned against the hash of the bytes read, writes the state store and
counts. A mover never writes an item's outcome to the state store itself; it does record the
server-side resources it opens, the moment they exist (DESIGN.md invariant 4).

The round drives a mover through this life:

    mover = factory(context)        one per round (`MoverFactory`)
    await mover.start()             pick up what an earlier run left in flight
    await mover.submit(work)        once per file, in plan order, while the walk goes on
    await mover.finish()            no more files: settle every file submitted
    await mover.release_stale()     after a round that completed: end what earlier runs left
                                    on the service that no file needs any more
    mover.abort()                   at any time: stop now (a second Ctrl-C)

The contract:

- `submit` returns once the mover has taken the file; it waits while the mover holds as much
  as it may (backpressure: memory stays bounded however large the tree). It does not wait for
  the file to arrive, and it never raises for one file's failure: the failure is an outcome.
  The file's folder may still be being created: `await work.folder.ready` gives its id, or
  None when it could not be created (then the file fails with `PARENT_NOT_CREATED`).
- Every file submitted gets exactly one outcome (`outcomes.arrived`, `adopted`, `skipped`,
  `failed`), unless the round stops: once `context.stopping` is set, the mover takes up no
  new file, brings what is in flight to a point the next run can resume from, and leaves the
  rest `pending` in the state store; the next run plans those files again.
- `finish` returns when every file is settled or left pending. If the caller is cancelled
  while it waits, the mover aborts and still waits for its own tasks to end before the
  cancellation goes on, so nothing writes to the state store after the round has closed it.
- `abort` (synchronous, idempotent) cancels everything in flight without sending a request;
  what the service holds stays recorded in the state store for the next run to resume or
  cancel.
- Each outcome is recorded after the target holds the file (target first, then state).

The Graph mover (`engine/graph_upload.py`) is the per-file, streaming kind: `submit` puts the
file in a bounded queue that N workers take files from; each sends its file through an upload
session, fragment by fragment, and reports it at once.

A batched, asynchronous mover fits the same contract. The SharePoint Migration API mover
(`sharelift.migration_api.mover`, chosen by `--via migration-api`; docs/migration-api.md):

- in `submit`, add the file to the package being filled; when it holds ~250 files or ~250 MB
  (a large file alone), seal it and hand it to a bounded pipeline that reads, hashes, encrypts
  and uploads its blobs to Azure Blob Storage, then submits the import job; `submit` waits
  while that pipeline is full;
- record each package and job id in the state store before submitting it, so that a killed
  run never submits it twice;
- follow each job (`GetMigrationJobProgress`, the Azure queue) for as long as it takes; when
  one ends, list the imported files through Graph (a listing or a delta, not a request per
  file) and report each in bulk: `outcomes.arrived(work, item, digest, ...)` with the hash of
  the bytes it packaged, so the same verification applies; `outcomes.failed` for an item the
  job's log or events reject;
- in `start`, follow the jobs an earlier run submitted and did not see end: the files they
  carry are submitted again by this round's plan, and the mover attaches them to the job that
  already carries them instead of packaging them twice;
- in `finish`, seal the last package and follow every job to its end; with `stopping` set,
  submit nothing new and leave the jobs recorded for the next run's `start`;
- in `release_stale`, delete the containers and keys of jobs that no file needs any more.

Folders stay the round's: they are created through Graph before their files are submitted,
so a package's manifest can name every parent by its id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sharelift.engine.config import EngineConfig
from sharelift.engine.folders import TargetFolder
from sharelift.engine.outcomes import Outcomes
from sharelift.graph.drive import DriveClient
from sharelift.plan import Planned
from sharelift.state import JobRecord, StateStore


@dataclass(eq=False)
class FileWork:
    """One planned file, handed to a mover."""

    plan: Planned
    """What the plan decided: `Action.UPLOAD` or `Action.ADOPT_IF_SAME`, with the conflict
    behaviour, what the state store and the target knew of the file, and its target path."""
    row: int
    """Its row in the state store (`pending`)."""
    folder: TargetFolder
    """Its folder at the target (`await folder.ready` for its id)."""
    source: str
    """Its absolute path at the source."""


@dataclass(frozen=True)
class RoundContext:
    """What a mover is given: the round it serves and the shared parts it reports through."""

    drive: DriveClient
    """The target drive, through the tenant's paced Graph client."""
    store: StateStore
    job: JobRecord
    round_id: int
    root_id: str
    """The driveItem id of the job's target folder."""
    config: EngineConfig
    outcomes: Outcomes
    stopping: asyncio.Event
    """Set when the round is asked to stop gracefully (`Engine.request_stop`)."""
    halt: Callable[[str], None] = lambda reason: None
    """Stop the round gracefully because the target cannot take more (its drive is full):
    `reason` is the one line the round's result carries. The file that met it stays pending,
    for the next run."""
    drive_type: str = ""
    """The target drive's type: `documentLibrary` (a site's library: it rewrites the Office
    files committed to it), `business` (a OneDrive), ..."""


class Mover(Protocol):
    """Moves the files of one round to the target; see the module docstring."""

    async def start(self) -> None:
        """Begin: start workers, pick up what an earlier run left in flight."""

    async def submit(self, work: FileWork) -> None:
        """Take one file (waiting while the mover holds as much as it may)."""

    async def finish(self) -> None:
        """No more files: wait until every file taken is settled or left pending."""

    async def release_stale(self) -> None:
        """After a round that completed: end, on the service, what earlier runs left that no
        file of the job needs any more (invariant 4)."""

    def abort(self) -> None:
        """Stop now: cancel what is in flight without sending a request."""


MoverFactory = Callable[[RoundContext], Mover]
"""Makes a round's mover (the round calls it once it has started)."""
