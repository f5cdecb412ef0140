"""The only code in sharelift that speaks HTTP to Microsoft.

client      GraphClient: httpx (HTTP/2, verified TLS, env proxies), token, user agent,
            error decoding, paging, downloads
transport   TLS context, timeouts, connections for pre-authenticated URLs, request bodies,
            what a message may show of a URL
retry       should_retry: the one retry decision
batch       JSON $batch: BatchRequest, BatchResponse, sending and retrying
pacer       Pacer: one per tenant; Retry-After, RateLimit-*, throttle windows, AIMD
types       parsed models: DriveItem, Drive, Site, UploadSession, DeltaPage, DriveItemVersion
drive       DriveClient: items, children, delta, downloads, PATCH, delete; drive and site
            look-ups; made of paths (addressing), folders, uploads (sessions, fragments,
            commit) and versions
sessions    upload sessions opened together, 20 to a $batch
sharepoint  SharePoint REST on the admin host
errors      the GraphError tree
"""

from sharelift.graph.client import (
    GRAPH_GLOBAL,
    USER_AGENT,
    BatchRequest,
    BatchResponse,
    GraphClient,
    Retry,
    TokenSupplier,
    make_ssl_context,
    should_retry,
)
from sharelift.graph.drive import (
    DEFAULT_FRAGMENT,
    FRAGMENT_UNIT,
    MAX_FRAGMENT,
    DriveClient,
    FragmentResult,
    NewFile,
    fragment_ranges,
    get_drive,
    get_site,
    get_site_drive,
    get_user_drive,
    list_site_drives,
)
from sharelift.graph.errors import (
    BadRequest,
    Conflict,
    FailedDependency,
    Forbidden,
    Gone,
    GraphError,
    InvalidRange,
    MalformedResponse,
    NameAlreadyExists,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
)
from sharelift.graph.pacer import Pacer, PacerState
from sharelift.graph.types import (
    DeltaPage,
    Drive,
    DriveItem,
    DriveItemVersion,
    FileFacet,
    FileSystemInfo,
    Owner,
    ParentReference,
    Quota,
    Site,
    UploadSession,
)

__all__ = [
    "DEFAULT_FRAGMENT",
    "FRAGMENT_UNIT",
    "GRAPH_GLOBAL",
    "MAX_FRAGMENT",
    "USER_AGENT",
    "BadRequest",
    "BatchRequest",
    "BatchResponse",
    "Conflict",
    "DeltaPage",
    "Drive",
    "DriveClient",
    "DriveItem",
    "DriveItemVersion",
    "FailedDependency",
    "FileFacet",
    "FileSystemInfo",
    "Forbidden",
    "FragmentResult",
    "Gone",
    "GraphClient",
    "GraphError",
    "InvalidRange",
    "MalformedResponse",
    "NameAlreadyExists",
    "NewFile",
    "NotFound",
    "Owner",
    "Pacer",
    "PacerState",
    "ParentReference",
    "PreconditionFailed",
    "Quota",
    "QuotaExceeded",
    "Retry",
    "ServerError",
    "Site",
    "Throttled",
    "TokenSupplier",
    "TransportError",
    "Unauthorized",
    "UploadSession",
    "fragment_ranges",
    "get_drive",
    "get_site",
    "get_site_drive",
    "get_user_drive",
    "list_site_drives",
    "make_ssl_context",
    "should_retry",
]
