"""Azure Blob Storage for packages: encrypted blobs with their IV, MD5 and a snapshot.

What the Migration API asks of each blob (sp-dev-docs `docs/apis/migration-azure.md`,
`migration-content-package.md`; REFERENCE-migration-api.md §3):

- its bytes encrypted with the job's key and an IV of its own (`crypto.py`), the IV base64 in
  the metadata `IV`;
- an MD5 of the bytes as stored, as the blob's Content-MD5 (`x-ms-blob-content-md5`, set with
  the block list or the single put, so the service can check what it reads);
- a snapshot, taken after the metadata is set: the service imports the latest snapshot, and a
  file without one fails ("Snapshot", migration-content-package.md).

`put_file` reads a source file in parts, hashes each part (quickXorHash of the plaintext, for
the verification through Graph afterwards), encrypts it and stages it as a block while the
next part is read and encrypted: reading, encrypting and uploading overlap. A small file is one
Put Blob. Retries are the SDK's own policy (exponential, on timeouts and 5xx/408/429).

The azure-storage-blob client used is the synchronous one (its asynchronous one needs aiohttp,
which sharelift does not depend on): every call here runs in a worker thread.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sharelift.migration_api.crypto import BlobCipher, b64, decrypt, encrypted_size, new_iv
from sharelift.quickxorhash import QuickXorHash

PART_SIZE = 8 * 1024 * 1024
"""Bytes read, encrypted and staged at a time; a file of at most this is one Put Blob. A file
in flight holds at most three parts (one being read, two being staged)."""
RETRIES = 5
OWN_SAS_LIFETIME = timedelta(days=7)
"""How long the SAS made for the user's own containers lasts (the import must end within it)."""
Reader = Callable[[int, int], bytes]
"""`read(offset, length)`: up to `length` bytes of the source from `offset` (`os.pread`)."""
_STAGED_AHEAD = 2


class StorageError(Exception):
    """Azure Storage refused or failed a request, after the SDK's retries. The message names
    the container and blob and Azure's error code, never the SAS; `status` is the HTTP status
    (None when no answer came)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredBlob:
    """What a blob holds: the quickXorHash of the plaintext, the MD5 (base64) of what is
    stored, and the plaintext's size."""

    quick_xor: str
    md5: str
    size: int


class Sessions:
    """The HTTP connections to Azure Storage, one pool per storage endpoint, shared by every
    container client of a round.

    Made here rather than by the SDK for two reasons measured on small files: the SDK's
    session reads the proxy settings from the environment on every request (`trust_env`; a
    tenth of the client's CPU per blob), so they are read once per endpoint instead, NO_PROXY
    included; and its pool keeps 10 connections, so that more uploads at once would open a
    TLS connection per request."""

    def __init__(self, connections: int) -> None:
        self._connections = connections
        self._by_origin: dict[str, requests.Session] = {}
        self._lock = threading.Lock()

    def transport(self, url: str, ca_file: str | None) -> RequestsTransport:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            session = self._by_origin.get(origin)
            if session is None:
                session = requests.Session()
                session.trust_env = False
                session.proxies = requests.utils.get_environ_proxies(origin)
                adapter = HTTPAdapter(
                    pool_connections=2,
                    pool_maxsize=self._connections,
                    max_retries=Retry(total=False, redirect=False, raise_on_status=False),
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                self._by_origin[origin] = session
        return RequestsTransport(
            session=session, session_owner=False, connection_verify=ca_file or True
        )

    def close(self) -> None:
        with self._lock:
            for session in self._by_origin.values():
                session.close()
            self._by_origin.clear()


def open_container(uri: str, ca_file: str | None, sessions: Sessions) -> ContainerClient:
    """A client for a container given by its URI with a SAS (what `ProvisionMigrationContainers`
    returns, or what sharelift made for the user's own containers)."""
    return ContainerClient.from_container_url(
        uri, transport=sessions.transport(uri, ca_file), retry_total=RETRIES
    )


def _fail(container: ContainerClient, name: str, exc: AzureError) -> StorageError:
    code = getattr(exc, "error_code", None) or type(exc).__name__
    status = getattr(exc, "status_code", None)
    where = f"{container.account_name}/{container.container_name}/{name}"
    detail = f"HTTP {status}, {code}" if status else str(code)
    first = str(getattr(exc, "reason", "") or "").splitlines()[:1]
    return StorageError(
        f"Azure Storage refused {where}: {detail}"
        + (f" ({first[0]})" if first and first[0] else ""),
        status if isinstance(status, int) else None,
    )


def _block_id(index: int) -> str:
    return base64.b64encode(f"{index:08d}".encode()).decode("ascii")


def put_file(
    container: ContainerClient,
    name: str,
    read: Reader,
    size: int,
    key: bytes,
    pool: ThreadPoolExecutor,
) -> StoredBlob:
    """Store `size` bytes got from `read(offset, length)` as the encrypted blob `name`
    (replacing it), with its IV, MD5 and a snapshot. Raises StorageError, OSError (reading), or
    ValueError when the source gives fewer bytes than `size` (it changed). `pool` stages
    blocks while the next part is read."""
    blob = container.get_blob_client(name)
    iv = new_iv()
    cipher = BlobCipher(key, iv)
    hasher = QuickXorHash()
    md5 = hashlib.md5()  # noqa: S324 (the service's integrity check, not security)
    try:
        if size <= PART_SIZE:
            plain = read(0, size)
            if len(plain) != size:
                raise ValueError("the file became shorter while it was read")
            hasher.update(plain)
            stored = cipher.update(plain) + cipher.finalize()
            md5.update(stored)
            blob.upload_blob(
                stored,
                overwrite=True,
                metadata={"IV": b64(iv)},
                content_settings=ContentSettings(content_md5=bytearray(md5.digest())),
            )
        else:
            _put_blocks(blob, read, size, cipher, hasher, md5, pool, iv)
        blob.create_snapshot()
    except AzureError as exc:
        raise _fail(container, name, exc) from None
    return StoredBlob(base64.b64encode(hasher.digest()).decode("ascii"), b64(md5.digest()), size)


def _encrypted_parts(
    read: Reader, size: int, cipher: BlobCipher, hasher: QuickXorHash
) -> Iterator[bytes]:
    """The `size` bytes `read` gives, `PART_SIZE` at a time, hashed as read and encrypted; the
    cipher's padding ends the last part (the only part of an empty file). Raises ValueError
    when the file became shorter."""
    if size == 0:
        yield cipher.finalize()
        return
    offset = 0
    while offset < size:
        plain = read(offset, min(PART_SIZE, size - offset))
        if not plain:
            raise ValueError("the file became shorter while it was read")
        offset += len(plain)
        hasher.update(plain)
        part = cipher.update(plain)
        yield part + cipher.finalize() if offset >= size else part


def _put_blocks(
    blob: BlobClient,
    read: Reader,
    size: int,
    cipher: BlobCipher,
    hasher: QuickXorHash,
    md5: hashlib._Hash,
    pool: ThreadPoolExecutor,
    iv: bytes,
) -> None:
    blocks: list[BlobBlock] = []
    staged: list[Future[object]] = []
    for part in _encrypted_parts(read, size, cipher, hasher):
        md5.update(part)
        block_id = _block_id(len(blocks))
        blocks.append(BlobBlock(block_id=block_id))
        staged.append(pool.submit(blob.stage_block, block_id, part, len(part)))
        while len(staged) > _STAGED_AHEAD:
            staged.pop(0).result()
    for future in staged:
        future.result()
    blob.commit_block_list(
        blocks,
        metadata={"IV": b64(iv)},
        content_settings=ContentSettings(content_md5=bytearray(md5.digest())),
    )


def put_bytes(
    container: ContainerClient, name: str, data: bytes, key: bytes, pool: ThreadPoolExecutor
) -> StoredBlob:
    """Store `data` (a manifest) as the encrypted blob `name`, with its IV, MD5 and a snapshot."""
    view = memoryview(data)
    return put_file(container, name, lambda at, n: bytes(view[at : at + n]), len(data), key, pool)


def has_snapshot(container: ContainerClient, name: str, md5: str) -> bool:
    """True when the blob `name` is stored with this MD5 (a snapshot was taken after it was
    committed, so a blob that is there whole has one). A SAS without List cannot enumerate
    snapshots; the state store says which blobs got one, this checks the blob is still there."""
    try:
        props = container.get_blob_client(name).get_blob_properties()
    except ResourceNotFoundError:
        return False
    except AzureError as exc:
        raise _fail(container, name, exc) from None
    stored = props.content_settings.content_md5
    return stored is not None and base64.b64encode(bytes(stored)).decode("ascii") == md5


def stored_already(
    container: ContainerClient, name: str, read: Reader, size: int, key: bytes
) -> StoredBlob | None:
    """The blob `name` as `put_file` would store the `size` bytes `read` gives, when it holds
    exactly them: a run killed after it stored the blob, before it could record it. The source
    is read and encrypted again with the IV in the blob's metadata and compared by MD5, and the
    blob is snapshotted again (its last owner may have died before its snapshot); no byte is
    uploaded. None when the blob is absent or holds anything else. Raises StorageError,
    OSError, ValueError as `put_file` does."""
    blob = container.get_blob_client(name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    except AzureError as exc:
        raise _fail(container, name, exc) from None
    metadata = props.metadata or {}
    iv = next((v for k, v in metadata.items() if k.lower() == "iv"), None)
    stored_md5 = props.content_settings.content_md5
    if iv is None or stored_md5 is None or props.size != encrypted_size(size):
        return None
    cipher = BlobCipher(key, base64.b64decode(iv))
    hasher = QuickXorHash()
    md5 = hashlib.md5()  # noqa: S324 (the service's integrity check, not security)
    for part in _encrypted_parts(read, size, cipher, hasher):
        md5.update(part)
    if md5.digest() != bytes(stored_md5):
        return None
    try:
        blob.create_snapshot()
    except AzureError as exc:
        raise _fail(container, name, exc) from None
    return StoredBlob(base64.b64encode(hasher.digest()).decode("ascii"), b64(md5.digest()), size)


def get_decrypted(container: ContainerClient, name: str, key: bytes | None) -> bytes:
    """The blob `name`, decrypted with `key` and the IV in its metadata (the service's logs of
    an encrypted job); as stored when `key` is None."""
    try:
        downloader = container.get_blob_client(name).download_blob()
        data = downloader.readall()
        metadata = downloader.properties.metadata or {}
    except HttpResponseError as exc:
        raise _fail(container, name, exc) from None
    if key is None:
        return data
    iv_text = next(
        (v for k, v in metadata.items() if k.lower() in ("iv", "initializationvector")), None
    )
    if iv_text is None:
        return data  # not encrypted after all
    return decrypt(key, base64.b64decode(iv_text), data)


def own_containers(connection_string: str, package_id: str, ca_file: str | None) -> tuple[str, str]:
    """Make a content and a manifest container for one package in the user's own storage
    account; their URIs with the SAS the service requires: content exactly Read + List,
    manifest exactly Read + List + Write (for its logs), HTTPS only, valid from a few minutes
    ago for a week (migration-api-reference.md, `azureContainerSourceUri`,
    `azureContainerManifestUri`: "the start time … at or before the job submission")."""
    service = BlobServiceClient.from_connection_string(
        connection_string, connection_verify=ca_file or True, retry_total=RETRIES
    )
    key = service.credential.account_key
    now = datetime.now(UTC)
    uris = []
    for suffix, permission in (
        ("content", ContainerSasPermissions(read=True, list=True)),
        ("manifest", ContainerSasPermissions(read=True, list=True, write=True)),
    ):
        name = f"sharelift-{package_id}-{suffix}"
        try:
            service.create_container(name)
        except ResourceExistsError:
            pass
        except AzureError as exc:
            code = getattr(exc, "error_code", None) or type(exc).__name__
            raise StorageError(f"cannot create the container {name}: {code}") from None
        sas = generate_container_sas(
            service.account_name or "",
            name,
            account_key=key,
            permission=permission,
            start=now - timedelta(minutes=5),
            expiry=now + OWN_SAS_LIFETIME,
            protocol="https",
        )
        uris.append(f"{service.url.rstrip('/')}/{name}?{sas}")
    return uris[0], uris[1]


def own_container(
    connection_string: str, uri: str, ca_file: str | None, sessions: Sessions | None = None
) -> ContainerClient:
    """The container of `uri` through the connection string (which may write to it)."""
    name = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    if sessions is None:
        return ContainerClient.from_connection_string(
            connection_string, name, connection_verify=ca_file or True, retry_total=RETRIES
        )
    return ContainerClient.from_connection_string(
        connection_string, name, transport=sessions.transport(uri, ca_file), retry_total=RETRIES
    )


def delete_own_containers(connection_string: str, uris: list[str], ca_file: str | None) -> None:
    """Delete a finished package's own containers (invariant 4); gone ones are fine."""
    for uri in uris:
        with contextlib.suppress(ResourceNotFoundError):
            own_container(connection_string, uri, ca_file).delete_container()
