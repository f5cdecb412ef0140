"""Where to: every form of TARGET a user has, parsed, then resolved through Graph.

Accepted forms (parsing needs no network; `resolve_target` does the Graph part):

- a OneDrive URL copied from the browser:
  `https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents/Sub`
- a SharePoint library folder URL: `https://contoso.sharepoint.com/sites/Team/Shared Documents/Sub`,
  including the list view form `…/Shared Documents/Forms/AllItems.aspx?id=/sites/Team/Shared…/Sub`
  and the sharing-link form `https://contoso.sharepoint.com/:f:/r/sites/Team/Shared%20Documents/Sub`
- SPMT's triple: site URL + library + subfolder (`--site`, `--library`, `--subfolder`)
- `onedrive:megan@contoso.com/Sub`
- `drive:{drive-id}/Sub` (or a bare drive id such as `b!…`)

Libraries are matched by their webUrl, never by their display name, which is localised and
renamable ("Documents" is "Dokumente" on a German tenant, and always "OneDrive" for a OneDrive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from sharelift.errors import TargetError

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
        raise TargetError(f"the target folder may not contain '..': {folder!r}")
    return "/".join(parts)


def parse_target(target: str) -> TargetSpec:
    """Parse a TARGET argument. Raises TargetError with the form expected when it is none."""
    text = target.strip()
    if not text:
        raise TargetError("TARGET is empty")
    low = text.lower()
    if low.startswith("onedrive:"):
        rest = text[len("onedrive:") :].lstrip("/")
        upn, _, folder = rest.partition("/")
        if not _UPN.match(upn):
            raise TargetError(
                f"{target!r}: expected onedrive:USER@DOMAIN[/folder], and {upn!r} is not a UPN"
            )
        return TargetSpec("onedrive", target, upn=upn.lower(), folder=_clean_folder(folder))
    if low.startswith("drive:"):
        rest = text[len("drive:") :]
        drive_id, _, folder = rest.partition("/")
        if not drive_id:
            raise TargetError(f"{target!r}: expected drive:DRIVE-ID[/folder]")
        return TargetSpec("drive", target, drive_id=drive_id, folder=_clean_folder(folder))
    if low.startswith(("https://", "http://")):
        return _parse_url(text, target)
    if low.startswith("b!") and "/" not in text.split("/", 1)[0][2:]:
        drive_id, _, folder = text.partition("/")
        return TargetSpec("drive", target, drive_id=drive_id, folder=_clean_folder(folder))
    raise TargetError(
        f"{target!r} is not a target: give a OneDrive or SharePoint URL, "
        "onedrive:USER@DOMAIN[/folder], drive:DRIVE-ID[/folder], or --site/--library/--subfolder"
    )


def _parse_url(text: str, raw: str) -> TargetSpec:
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise TargetError(f"{raw!r}: SharePoint and OneDrive URLs use https")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetError(f"{raw!r}: the URL has no host")
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
                raise TargetError(f"{raw!r}: a page URL without the folder it shows (id=…)")
            path = path[:cut]
    path = "/" + "/".join(p for p in path.split("/") if p)
    return TargetSpec("url", raw, host=host, path=path)


def site_triple(site_url: str, library: str, subfolder: str = "") -> TargetSpec:
    """SPMT's triple: the site's URL, the library (display name or URL name), a subfolder."""
    parts = urlsplit(site_url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise TargetError(f"--site {site_url!r}: expected https://HOST/sites/NAME")
    if not library.strip():
        raise TargetError("--library is empty: name the document library (e.g. Documents)")
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
