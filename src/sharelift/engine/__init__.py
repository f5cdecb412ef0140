"""The migration engine: one round of one job, in parts with one role each.

    round.py          Engine: one round (walk, plan, dispatch, finish), RoundResult
    config.py         EngineConfig: how a round runs, and what memory it costs
    dispatch.py       plans each folder of the walk and hands each item to whoever acts on it
    folders.py        folders on their way to the target; created 20 to a $batch
    mover.py          the Mover protocol: what carries planned files to the target
    graph_upload.py   the Graph mover: workers, the attempts at each file
    graph_session.py  one file through one upload session: open, resume, fragments, commit
    enriched.py       a library's rewrite of an Office file told from corruption (the proof)
    adopt.py          whether the file already at the target is the source's
    aside.py          files SharePoint refuses to replace or delete, moved aside first
    versions.py       removing a file's versions older than its current one
    reader.py         reading the source: read-only opens, fragment buffers, read-ahead
    outcomes.py       the one way an outcome is verified, written and counted
    reconcile.py      the state against the target: --verify-target, --mirror
    tasks.py          waiting for a round's tasks, cancellations included

Planning itself (listing -> filters -> names -> plan) is `sharelift.source.pipeline`, shared
with `sharelift scan` and the dry run; the state store is used through
`sharelift.state.StateStore`; progress is counted in one `sharelift.progress.Tally`.
"""

from sharelift.engine.config import EngineConfig
from sharelift.engine.round import Engine, RoundResult

__all__ = ["Engine", "EngineConfig", "RoundResult"]
