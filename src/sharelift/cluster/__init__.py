"""A migration over many machines: units of work on Celery workers, Redis as the broker,
the state store (PostgreSQL) as the one place where the truth is kept.

    coordinator.py  `migrate --broker`: a job unit per job, handed to the broker; then the
                    run followed from the state store (progress of every machine), reports
    app.py          the Celery app: settings that fit hours of IO, publishing a unit
    specs.py        what a unit carries (the job as given, where its sub-tree goes)
    runner.py       one delivery of a unit: claim its lease, run it, end or hand it back
    kinds.py        what each kind of unit does: job (resolve, open the round, walk from the
                    top), tree (a carved sub-tree), finish (close the round)
    carving.py      the folders a unit has no budget for, recorded as units of their own
    heartbeat.py    the worker's heartbeat thread: lease renewals, its row in `workers`, the
                    units the broker must be given again, the tenant budget's share
    worker.py       `sharelift worker`: one Celery worker process, one unit at a time

Correctness does not rest on the broker (DESIGN.md invariant 8): a unit delivered twice finds
its live lease and backs off; a unit whose worker died is handed to the broker again once its
lease lapses, and the next owner resumes from the state store (saved upload sessions resume;
files already at the target are found by listing, not sent again); a message the broker lost
is handed over again by any worker that finds itself idle while the unit waits. See
docs/scale-out.md.
"""
