"""The source side: a streaming walk of a folder tree and the OneDrive / SharePoint rules."""

from sharelift.source.rules import (
    Code,
    Decision,
    Finding,
    RenamePolicy,
    Severity,
    Status,
    TargetPrefix,
    decide_siblings,
)
from sharelift.source.walk import Listing, ScanOptions, WalkItem, WalkProblem, walk, walk_listings

__all__ = [
    "Code",
    "Decision",
    "Finding",
    "Listing",
    "RenamePolicy",
    "ScanOptions",
    "Severity",
    "Status",
    "TargetPrefix",
    "WalkItem",
    "WalkProblem",
    "decide_siblings",
    "walk",
    "walk_listings",
]
