"""What the import worker needs of the tenant: the target web's ids and a place to put items.

`ImportTarget` is the worker's whole view of the tenant model, so that the import logic does
not depend on how the store is laid out. `StoreTarget` implements it over the emulator's store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Identity = dict[str, Any]


@dataclass(frozen=True)
class Library:
    """A document library of the target web: its list id, drive, and root folder."""

    list_id: str
    drive_id: str
    root_item_id: str
    root_guid: str


@dataclass(frozen=True)
class Placed:
    """An item of the tenant found by its unique id."""

    drive_id: str
    item_id: str
    is_folder: bool


E_ITEM = -2147024816
"""The HRESULT of migration-events.md's JobError sample, for an item the package got wrong."""


class ImportError_(Exception):
    """The tenant refused one item (a name conflict, quota): a JobError for that item."""

    def __init__(self, message: str, code: int = -2147024713) -> None:
        super().__init__(message)
        self.code = code


class ImportTarget(Protocol):
    """The target site collection of a job."""

    site_id: str
    web_id: str

    def library(self, list_id: str) -> Library | None:
        """The library with this list id in the target web, or None."""

    def find(self, guid: str) -> Placed | None:
        """The file or folder with this unique id anywhere in the target web, or None."""

    def user(self, upn: str) -> Identity | None:
        """The identity of the tenant's user with this UPN, or None."""

    def put_folder(
        self,
        drive_id: str,
        parent_item_id: str,
        guid: str,
        name: str,
        created: float | None,
        modified: float | None,
        author: Identity,
        editor: Identity,
    ) -> str:
        """Create (or move/rename) the folder with this unique id; returns its item id.
        Raises ImportError_."""

    def put_file(
        self,
        drive_id: str,
        parent_item_id: str,
        guid: str,
        name: str,
        data: bytes,
        created: float | None,
        modified: float | None,
        author: Identity,
        editor: Identity,
    ) -> str:
        """Create the file with this unique id, replacing any earlier one with the same id
        (its versions included); returns its item id. Raises ImportError_."""
