"""Where to: every form of TARGET a user has, parsed, then resolved through Graph.

Accepted forms (parsing needs no network; `resolve_target` does the Graph part):

- a OneDrive URL copied from the browser:
  `https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents/Sub`
- a SharePoint library folder URL: `https://contoso.sharepoint.com/sites/Team/Shared Documents/Sub`,
  including the list view form `…/Shared Documents/Forms/AllItems.aspx?id=/sites/Team/Shared…/Sub`
  and the sharing-link form `https://contoso.sharepoint.com/:f:/r/sites/Team/Shared%20Documents/Sub`
- SPMT's triple: site URL + library + subfolder (the `site`, `library`, `subfolder` options)
- `onedrive:megan@contoso.com/Sub`
- `drive:{drive-id}/Sub` (or a bare drive id such as `b!…`)

A TARGET that is not one of these forms is a usage error (OptionError naming `target`, exit 2)
before anything is asked of Graph. Graph failures while resolving keep their meaning: a 404
is a target that does not exist (TargetError, naming the part that is missing: the host, the
site and the nearest site that exists, the library and the libraries the site has, the user —
unknown, without a OneDrive licence, or not provisioned yet); a 401/403 is an AuthError;
throttling, server errors and lost connections that outlast the client's retries are an
UnavailableError; the Graph error is chained as the cause.

Libraries are matched by their webUrl, never by their display name, which is localised and
renamable ("Documents" is "Dokumente" on a German tenant, and always "OneDrive" for a OneDrive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sharelift.errors import AuthError, OptionError, ShareliftError, TargetError, UnavailableError
from sharelift.graph import drive as graph_drive
from sharelift.graph.client import GraphClient
from sharelift.graph.errors import (
    BadRequest,
    Forbidden,
    GraphError,
    NotFound,
    ServerError,
    Throttled,
    TransportError,
    Unauthorized,
)
from sharelift.graph.types import Drive, Site

# Managed paths under which a site collection lives; the segment after them is the site name.
# https://learn.microsoft.com/en-us/sharepoint/what-is-a-managed-path
_MANAGED_PATHS = ("sites", "teams", "personal", "portals")
# Sharing links: https://{host}/:f:/r/{server-relative path}?… (":f:" folder, ":w:" Word…)
_SHARING_LINK = re.compile(r"^/:[a-z]:/[rsg]/", re.IGNORECASE)
_UPN = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A parsed TARGET, before any Graph call.

    kind is one of:
      "url"      host + path: the decoded server-relative path of a library folder
      "site"     host + site_path, library (name or URL segment) and folder (SPMT's triple)
      "onedrive" upn + folder
      "drive"    drive_id + folder
    `folder` is always relative to the library root, '/'-separated, without leading slash.
    """

    kind: str
    raw: str
    host: str = ""
    path: str = ""
    site_path: str = ""
    library: str = ""
    upn: str = ""
    drive_id: str = ""
    folder: str = ""

    def __str__(self) -> str:
        return self.raw


def _clean_folder(folder: str) -> str:
    parts = [p for p in folder.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise OptionError("target", f"the target folder may not contain '..': {folder!r}")
    return "/".join(parts)


def parse_target(target: str) -> TargetSpec:
    """Parse a TARGET argument. Raises OptionError (`target`) with the form expected when it
    is none."""
    text = target.strip()
    if not text:
        raise OptionError("target", "empty")
    low = text.lower()
    if low.startswith("onedrive:"):
        rest = text[len("onedrive:") :].lstrip("/")
        upn, _, folder = rest.partition("/")
        if not _UPN.match(upn):
            raise OptionError(
                "target",
                f"{target!r}: expected onedrive:USER@DOMAIN[/folder], and {upn!r} is not a UPN",
            )
        return TargetSpec("onedrive", target, upn=upn.lower(), folder=_clean_folder(folder))
    if low.startswith("drive:"):
        rest = text[len("drive:") :]
        drive_id, _, folder = rest.partition("/")
        if not drive_id:
            raise OptionError("target", f"{target!r}: expected drive:DRIVE-ID[/folder]")
        return TargetSpec("drive", target, drive_id=drive_id, folder=_clean_folder(folder))
    if low.startswith(("https://", "http://")):
        return _parse_url(text, target)
    if low.startswith("b!") and "/" not in text.split("/", 1)[0][2:]:
        drive_id, _, folder = text.partition("/")
        return TargetSpec("drive", target, drive_id=drive_id, folder=_clean_folder(folder))
    raise OptionError(
        "target",
        f"{target!r} is not a target: give a OneDrive or SharePoint URL (https://...), "
        "onedrive:USER@DOMAIN[/folder], drive:DRIVE-ID[/folder], or a site, library and "
        "subfolder",
    )


def _parse_url(text: str, raw: str) -> TargetSpec:
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise OptionError("target", f"{raw!r}: SharePoint and OneDrive URLs use https")
    host = (parts.hostname or "").lower()
    if not host:
        raise OptionError("target", f"{raw!r}: the URL has no host")
    path = unquote(parts.path)
    query = parse_qs(parts.query)
    if _SHARING_LINK.match(path):
        path = "/" + _SHARING_LINK.sub("", path)
    # A list view (…/Forms/AllItems.aspx) names the folder in its `id` (or RootFolder) parameter.
    leaf = path.rsplit("/", 1)[-1].lower()
    if leaf.endswith(".aspx"):
        folder_param = query.get("id") or query.get("RootFolder")
        if folder_param:
            path = folder_param[0]
        else:
            cut = path.lower().rfind("/forms/")
            if cut < 0:
                raise OptionError(
                    "target", f"{raw!r}: a page URL without the folder it shows (id=…)"
                )
            path = path[:cut]
    path = "/" + "/".join(p for p in path.split("/") if p)
    return TargetSpec("url", raw, host=host, path=path)


def site_triple(site_url: str, library: str, subfolder: str = "") -> TargetSpec:
    """SPMT's triple: the site's URL, the library (display name or URL name), a subfolder."""
    parts = urlsplit(site_url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise OptionError("site", f"{site_url!r}: expected https://HOST/sites/NAME")
    if not library.strip():
        raise OptionError("library", "empty: name the document library (e.g. Documents)")
    site_path = "/" + "/".join(p for p in unquote(parts.path).split("/") if p)
    raw = f"{site_url} {library} {subfolder}".strip()
    return TargetSpec(
        "site",
        raw,
        host=parts.hostname.lower(),
        site_path="" if site_path == "/" else site_path,
        library=library.strip().strip("/"),
        folder=_clean_folder(subfolder),
    )


def site_path_candidates(path: str) -> list[str]:
    """Server-relative site paths that may own `path`, shortest first.

    `/sites/Team/Sub/Shared Documents/x` -> ["/sites/Team", "/sites/Team/Sub",
    "/sites/Team/Sub/Shared Documents"]; a path outside a managed path starts at the root site
    ("" meaning `/`). Subsites are why several candidates exist.
    """
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0].lower() in _MANAGED_PATHS:
        first = 2
        out = ["/" + "/".join(segs[:2])]
    else:
        first = 0
        out = [""]
    for n in range(first + 1, len(segs)):
        out.append("/" + "/".join(segs[:n]))
    return out


def onedrive_personal_path(upn: str) -> str:
    """`megan@contoso.com` -> `/personal/megan_contoso_com`, as SharePoint names OneDrives."""
    return "/personal/" + re.sub(r"[.@]", "_", upn.lower())


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A target resolved through Graph: the drive, and the folder's path below its root.

    `library_path` is the decoded server-relative path of the library
    (`/sites/Team/Shared Documents`), the prefix SharePoint counts in its 400-character limit;
    `web_url` is the folder's URL, for reports. The folder itself may not exist yet:
    `folder_id` is None then, and the engine creates it (never in a dry run).
    """

    drive_id: str
    drive_type: str
    library_path: str
    folder: str
    folder_id: str | None
    web_url: str

    @property
    def server_relative_path(self) -> str:
        return f"{self.library_path}/{self.folder}" if self.folder else self.library_path


def _url_path(url: str | None) -> str:
    return "/" + "/".join(p for p in unquote(urlsplit(url or "").path).split("/") if p)


def _under(path: str, prefix: str) -> str | None:
    """The rest of `path` below `prefix` (case-insensitive, whole segments), or None."""
    p, q = path.lower().rstrip("/"), prefix.lower().rstrip("/")
    if p == q:
        return ""
    if p.startswith(q + "/"):
        return path[len(q) + 1 :]
    return None


def _libraries(drives: list[Drive]) -> str:
    """`Documents (/sites/Team/Shared Documents), Archive (/sites/Team/Archive)`."""
    shown = sorted(f"{d.name or '?'} ({_url_path(d.web_url)})" for d in drives)
    return ", ".join(shown) or "none"


async def _missing_site(client: GraphClient, host: str, site_path: str, raw: str) -> TargetError:
    """No site at `site_path` on `host`: say whether the host is one of the tenant's, and
    the nearest site that exists above the path."""
    segments = [s for s in site_path.split("/") if s]
    if len(segments) == 2 and segments[0].lower() == "personal":
        return TargetError(
            f"{raw!r}: no OneDrive at https://{host}{site_path}: it is not provisioned yet "
            "(`sharelift provision` creates it; with --jobs, --provision), or no user owns it"
        )
    for n in range(len(segments) - 1, -1, -1):
        above = "/" + "/".join(segments[:n]) if n else ""
        if n and segments[0].lower() in _MANAGED_PATHS and n < 2:
            continue  # /sites alone is no site
        try:
            await graph_drive.get_site(client, host, above)
        except (NotFound, BadRequest):
            # Graph answers 400 "Invalid hostname for this tenancy" for a foreign host (the
            # emulator 404): either way not even the root site is there.
            continue
        return TargetError(
            f"{raw!r}: no site at https://{host}{site_path}; the nearest site that exists is "
            f"https://{host}{above or '/'}"
        )
    return TargetError(
        f"{raw!r}: {host} is not a SharePoint host of this tenant (no site there; "
        "check the host name, e.g. contoso.sharepoint.com or contoso-my.sharepoint.com)"
    )


async def _find_site_drive(
    client: GraphClient, host: str, path: str, raw: str
) -> tuple[Drive, str]:
    """The library of a SharePoint URL path: the site owning it, then the drive by webUrl."""
    owner: tuple[str, list[Drive]] | None = None
    candidates = site_path_candidates(path)
    for candidate in candidates:
        try:
            site = await graph_drive.get_site(client, host, candidate)
        except NotFound:
            continue
        best: tuple[Drive, str] | None = None
        drives = await graph_drive.list_site_drives(client, site.id)
        for drive in drives:
            rest = _under(path, _url_path(drive.web_url))
            if rest is not None and (best is None or len(rest) < len(best[1])):
                best = (drive, rest)
        if best is not None:
            return best
        owner = (candidate, drives)  # the deepest site found: the path is in one of its libraries
    if owner is None:
        raise await _missing_site(client, host, candidates[0], raw)
    site_path, drives = owner
    raise TargetError(
        f"{raw!r}: the site https://{host}{site_path or '/'} has no document library at "
        f"{path} (its libraries: {_libraries(drives)})"
    )


async def _missing_onedrive(client: GraphClient, upn: str, exc: NotFound) -> TargetError:
    """Why `upn` has no OneDrive: an unknown user, a user without a licence that includes
    OneDrive, or one whose OneDrive is not provisioned yet (only that one `provision` fixes).
    Graph says "Request_ResourceNotFound" for an unknown user and "ResourceNotFound" (user's
    mysite not found) for a OneDrive that does not exist yet."""
    unknown = TargetError(
        f"no user {upn} in the tenant (check the user principal name: usually the address "
        "the user signs in with)"
    )
    if exc.code == "Request_ResourceNotFound":
        return unknown
    try:
        user = await client.get_json(
            f"/users/{quote(upn, safe='@')}", params={"$select": "assignedLicenses"}
        )
    except NotFound:
        return unknown
    if isinstance(user, dict) and user.get("assignedLicenses") == []:
        return TargetError(
            f"{upn} has no licence that includes OneDrive, so no OneDrive can exist; assign "
            "one (an administrator, in the Microsoft 365 admin center), then migrate"
        )
    return TargetError(
        f"{upn} has no OneDrive yet (not provisioned); `sharelift provision {upn}` creates "
        "it, or the user signs in to OneDrive once"
    )


def resolution_error(raw: str, exc: GraphError) -> ShareliftError:
    """What a Graph failure while resolving `raw` means to the person who named it (the caller
    chains `exc` as the cause)."""
    if isinstance(exc, Unauthorized | Forbidden):
        return AuthError(f"cannot resolve {raw!r}: access denied: {exc}")
    if isinstance(exc, Throttled | ServerError | TransportError):
        return UnavailableError(
            f"cannot resolve {raw!r} now, nothing changed; run again later: {exc}"
        )
    return TargetError(f"cannot resolve {raw!r}: {exc}")


async def resolve_target(client: GraphClient, spec: TargetSpec) -> ResolvedTarget:
    """Resolve a parsed target through Graph. Raises TargetError saying what was not found,
    AuthError when access is denied, UnavailableError when Graph cannot answer for now."""
    try:
        folder = spec.folder
        if spec.kind == "onedrive":
            try:
                drive = await graph_drive.get_user_drive(client, spec.upn)
            except NotFound as exc:
                raise await _missing_onedrive(client, spec.upn, exc) from None
        elif spec.kind == "drive":
            try:
                drive = await graph_drive.get_drive(client, spec.drive_id)
            except NotFound:
                raise TargetError(f"no drive with id {spec.drive_id!r}") from None
        elif spec.kind == "url":
            drive, folder = await _find_site_drive(client, spec.host, spec.path, spec.raw)
        else:  # SPMT triple: the library by URL name first, then by display name
            site: Site
            try:
                site = await graph_drive.get_site(client, spec.host, spec.site_path)
            except (NotFound, BadRequest):
                raise await _missing_site(client, spec.host, spec.site_path, spec.raw) from None
            drives = await graph_drive.list_site_drives(client, site.id)
            wanted = spec.library.lower()
            by_url = [
                d for d in drives if _url_path(d.web_url).rsplit("/", 1)[-1].lower() == wanted
            ]
            by_name = [d for d in drives if (d.name or "").lower() == wanted]
            found = by_url or by_name
            if not found:
                raise TargetError(
                    f"site https://{spec.host}{spec.site_path} has no library {spec.library!r} "
                    f"(its libraries: {_libraries(drives)})"
                )
            drive = found[0]
        library_path = _url_path(drive.web_url)
        folder_id: str | None
        client_drive = graph_drive.DriveClient(client, drive.id)
        if folder:
            try:
                item = await client_drive.get_item_by_path(folder)
            except NotFound:
                folder_id = None
            else:
                if not item.is_folder:
                    raise TargetError(
                        f"{spec.raw!r}: {folder!r} is a file at the target, not a folder"
                    )
                folder_id = item.id
        else:
            folder_id = (await client_drive.get_root()).id
    except GraphError as exc:
        raise resolution_error(spec.raw, exc) from exc
    web = (drive.web_url or "").rstrip("/")
    return ResolvedTarget(
        drive_id=drive.id,
        drive_type=drive.drive_type or "",
        library_path=library_path,
        folder=folder,
        folder_id=folder_id,
        web_url=f"{web}/{folder}" if folder else web,
    )


async def find_folder(client: GraphClient, target: ResolvedTarget) -> ResolvedTarget:
    """`target` with `folder_id` set when its folder exists already, unchanged when it does not
    (the engine creates it). Raises TargetError when a file has the folder's name, and as
    `resolve_target` does for any other failure."""
    try:
        item = await graph_drive.DriveClient(client, target.drive_id).get_item_by_path(
            target.folder
        )
    except NotFound:
        return target
    except GraphError as exc:
        raise resolution_error(target.web_url, exc) from exc
    if not item.is_folder:
        raise TargetError(f"{target.web_url!r}: {target.folder!r} is a file, not a folder")
    return replace(target, folder_id=item.id)
