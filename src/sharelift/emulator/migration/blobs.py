"""The import worker's access to a job's containers and queue in Azure Storage (Azurite).

The service reads each blob's latest snapshot, never the base blob ("Migration API uses the
latest snapshot of the file available at the time of import": sp-dev-docs
`docs/apis/migration-content-package.md`, "Snapshot"), checks the stored bytes against their
MD5 (the blob's Content-MD5, or the manifest's `MD5Hash`, both of the bytes as stored) and
decrypts them with the job's key and the blob's IV (metadata `IV`; `InitializationVector`
is accepted too), part by part as they are downloaded (`stream_blob`).

The caller's own containers are reached through their SAS, as the real service does.
SharePoint-provided containers grant Read and Write only, no List, which cannot find a
snapshot: the service owns those, so it reaches them with the account key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.queue import QueueClient

from sharelift.emulator.migration.crypto import Decryption, DecryptionError, encrypt, parse_iv
from sharelift.emulator.migration.sas import SasUri

IV_METADATA = ("IV", "InitializationVector")


class BlobProblem(Exception):
    """A blob the import cannot use: absent, without snapshot, corrupt, or undecryptable."""

    def __init__(self, message: str, code: int = -2147024894) -> None:
        super().__init__(message)
        self.code = code
        """The HRESULT reported in the job's error event."""


@dataclass(frozen=True)
class Storage:
    """How the worker reaches Azurite: the CA to trust and the account's connection string."""

    ca_file: str
    connection_string: str = ""

    def container(self, sas: SasUri, provided: bool) -> ContainerClient:
        # Azurite 3.35 refuses to serve a blob snapshot through a container SAS (403
        # AuthorizationFailure whatever the SAS version), which Azure Storage serves, and the
        # import reads snapshots: a caller's own container in this Azurite is read with the
        # account's key once its SAS was checked, at CreateMigrationJob.
        if provided or f"AccountName={sas.account};" in self.connection_string:
            return ContainerClient.from_connection_string(
                self.connection_string, sas.name, connection_verify=self.ca_file
            )
        return ContainerClient.from_container_url(sas.uri, connection_verify=self.ca_file)

    def queue(self, sas: SasUri, provided: bool) -> QueueClient:
        if provided:
            return QueueClient.from_connection_string(
                self.connection_string, sas.name, connection_verify=self.ca_file
            )
        return QueueClient.from_queue_url(sas.uri, connection_verify=self.ca_file)


def latest_snapshot(container: ContainerClient, name: str) -> BlobProperties | None:
    """The newest snapshot of blob `name`; None when the blob has none.

    Raises BlobProblem when there is no such blob at all.
    """
    found = False
    newest: BlobProperties | None = None
    try:
        for blob in container.list_blobs(name_starts_with=name, include=["snapshots", "metadata"]):
            if blob.name != name:
                continue
            found = True
            if blob.snapshot and (newest is None or blob.snapshot > str(newest.snapshot)):
                newest = blob
    except ResourceNotFoundError as exc:
        raise BlobProblem("the container does not exist") from exc
    except AzureError as exc:
        raise BlobProblem(f"the container cannot be read: {type(exc).__name__}") from exc
    if not found:
        raise BlobProblem(f"blob '{name}' does not exist")
    return newest


def read_blob(
    container: ContainerClient,
    name: str,
    key: bytes | None,
    *,
    md5_hash: str = "",
    iv_text: str = "",
) -> bytes:
    """The plaintext of blob `name`'s latest snapshot, checked and decrypted.

    `md5_hash` and `iv_text` are the manifest's `MD5Hash` / `InitializationVector`, which
    stand in for the blob's own Content-MD5 and IV metadata. Raises BlobProblem.
    """
    parts: list[bytes] = []
    stream_blob(container, name, key, parts.append, md5_hash=md5_hash, iv_text=iv_text)
    return b"".join(parts)


def stream_blob(
    container: ContainerClient,
    name: str,
    key: bytes | None,
    sink: Callable[[bytes], object],
    *,
    md5_hash: str = "",
    iv_text: str = "",
    max_size: int | None = None,
) -> None:
    """Hand the plaintext of blob `name`'s latest snapshot to `sink` part by part, as it is
    downloaded, checked and decrypted (see `read_blob`). A stored blob of more than
    `max_size` bytes is refused before any of it is read.

    The MD5 and the padding are known only at the end: when this raises BlobProblem, what
    `sink` was given is to be thrown away.
    """
    snapshot = latest_snapshot(container, name)
    if snapshot is None:
        raise BlobProblem(f"blob '{name}' has no snapshot", code=-2147024809)
    if max_size is not None and snapshot.size > max_size:
        raise BlobProblem(
            f"blob '{name}' has {snapshot.size} bytes, more than {max_size}", code=-2147024809
        )
    expected = _expected_md5(name, snapshot, md5_hash)
    decryption = None
    if key is not None:
        metadata = {k.lower(): v for k, v in (snapshot.metadata or {}).items()}
        iv_given = next((metadata[n.lower()] for n in IV_METADATA if n.lower() in metadata), "")
        iv = parse_iv(iv_given or iv_text)
        if iv is None:
            raise BlobProblem(f"blob '{name}' has no valid IV in its metadata")
        decryption = Decryption(key, iv)
    md5 = hashlib.md5()  # noqa: S324 — Azure's integrity check
    try:
        blob = container.get_blob_client(name, snapshot=snapshot.snapshot)
        for part in blob.download_blob().chunks():
            md5.update(part)
            sink(part if decryption is None else decryption.update(part))
    except AzureError as exc:
        raise BlobProblem(f"blob '{name}' cannot be read: {type(exc).__name__}") from exc
    if md5.digest() != expected:
        raise BlobProblem(f"blob '{name}' does not match its MD5", code=-2147467259)
    if decryption is not None:
        try:
            sink(decryption.finalize())
        except DecryptionError as exc:
            raise BlobProblem(f"blob '{name}' cannot be decrypted: {exc}") from exc


def _expected_md5(name: str, snapshot: BlobProperties, md5_hash: str) -> bytes:
    """The MD5 the stored bytes must have: the blob's Content-MD5, else the manifest's."""
    stored_md5 = snapshot.content_settings.content_md5
    if stored_md5:
        return bytes(stored_md5)
    if not md5_hash:
        raise BlobProblem(f"blob '{name}' has no MD5 (Content-MD5 or MD5Hash)")
    try:
        return base64.b64decode(md5_hash, validate=True)
    except ValueError as exc:
        raise BlobProblem(f"blob '{name}': MD5Hash is not base64") from exc


def write_log(container: ContainerClient, name: str, text: str, key: bytes | None) -> None:
    """Write an import log into the manifest container, encrypted for encrypted jobs."""
    data = text.encode("utf-8")
    metadata = None
    if key is not None:
        iv, data = encrypt(key, data)
        metadata = {"IV": base64.b64encode(iv).decode("ascii")}
    container.upload_blob(name, data, overwrite=True, metadata=metadata)


def queue_message(event: dict[str, str], job_id: str, key: bytes | None) -> str:
    """A queue message for `event`: base64 text of the event's JSON, or of the encrypted
    envelope `{"Label": "Encrypted", "JobId", "IV", "Content"}` for encrypted jobs
    (migration-azure.md, "Azure Queue Encryption")."""
    body = json.dumps(event, separators=(",", ":")).encode("utf-8")
    if key is not None:
        iv, sealed = encrypt(key, body)
        envelope = {
            "Label": "Encrypted",
            "JobId": job_id,
            "IV": base64.b64encode(iv).decode("ascii"),
            "Content": base64.b64encode(sealed).decode("ascii"),
        }
        body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(body).decode("ascii")
