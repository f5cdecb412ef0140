"""`sharelift.Credential`: who signs in, and to which Microsoft 365 cloud.

    Credential.from_secret(tenant=..., client_id=..., secret=...)
    Credential.from_certificate(tenant=..., client_id=..., certificate="app.pem", password="")
    Credential.from_token("eyJ0eXAi...")
    Credential.device_code(tenant=..., client_id=..., on_message=print)
    Credential.managed_identity(client_id=None)
    Credential.from_profile("default")          # saved by `sharelift login`

Every constructor also takes `cloud` (`global`, `usgov`, `usgovdod`, `china`), `emulator` (the
data folder of a local emulator: its endpoints, CA and, unless given, its app's client id,
secret and certificate) and `ca_bundle` (a CA file to trust besides the system's, e.g. a
TLS-inspecting proxy's). All sign-ins go through MSAL (sharelift.auth); nothing here prints or
reads the environment. Errors are AuthError or OptionError, naming the keyword at fault.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sharelift.auth import (
    AuthSettings,
    TokenProvider,
    build_credential,
    load_profile,
    token_cache_path,
    trust_bundle,
)
from sharelift.clouds import Cloud, resolve_cloud
from sharelift.errors import AuthError
from sharelift.logs import add_secret
from sharelift.network import Timeouts

PathLike = str | os.PathLike[str]


class Credential:
    """A way to get access tokens, and the cloud they are for. Make one with a constructor
    below; `token()` is thread-safe and answers from MSAL's cache while a token is valid.

    `cloud` holds the endpoints (`cloud.graph_url`, `cloud.ca_file`); `method` is one of
    device_code, secret, certificate, managed_identity, token. A credential never shows a
    secret or a token in its repr or in an error.
    """

    def __init__(
        self, provider: TokenProvider, cloud: Cloud, method: str, timeouts: Timeouts | None = None
    ) -> None:
        self._provider = provider
        self.cloud = cloud
        self.method = method
        self.timeouts = timeouts or Timeouts()
        """The connect and read timeouts of every network call made for this credential's
        runs: sign-in, Graph, uploads, downloads, SharePoint REST."""

    def token(self, scopes: Sequence[str] | None = None) -> str:
        """An access token for `scopes` (default: Microsoft Graph of this cloud); raises
        AuthError when none can be had."""
        return self._provider.token(list(scopes) if scopes else [self.cloud.graph_scope])

    def accounts(self) -> list[str]:
        """The people signed in through this credential's token cache (device code), else []."""
        accounts: Callable[[], list[str]] | None = getattr(self._provider, "accounts", None)
        return accounts() if accounts is not None else []

    def close(self) -> None:
        """Release the HTTP session used for sign-in (the credential cannot be used after)."""
        close: Callable[[], None] | None = getattr(self._provider, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"Credential({self.method}, cloud={self.cloud.name}, {self._provider!r})"

    # --- constructors ------------------------------------------------------------------------

    @classmethod
    def from_secret(
        cls,
        *,
        tenant: str = "",
        client_id: str = "",
        secret: str = "",
        cloud: str = "global",
        emulator: PathLike | None = None,
        ca_bundle: PathLike | None = None,
    ) -> Credential:
        """App-only sign-in with a client secret."""
        return sign_in(
            "secret",
            tenant=tenant,
            client_id=client_id,
            secret=secret,
            cloud=cloud,
            emulator=emulator,
            ca_bundle=ca_bundle,
        )

    @classmethod
    def from_certificate(
        cls,
        *,
        tenant: str = "",
        client_id: str = "",
        certificate: PathLike | None = None,
        password: str = "",
        cloud: str = "global",
        emulator: PathLike | None = None,
        ca_bundle: PathLike | None = None,
    ) -> Credential:
        """App-only sign-in with a certificate: a PEM file holding the private key and the
        certificate, or a PFX/PKCS#12 file (with `password`). What Microsoft recommends for
        migrations."""
        return sign_in(
            "certificate",
            tenant=tenant,
            client_id=client_id,
            certificate=certificate,
            certificate_password=password,
            cloud=cloud,
            emulator=emulator,
            ca_bundle=ca_bundle,
        )

    @classmethod
    def from_token(
        cls,
        token: str,
        *,
        cloud: str = "global",
        emulator: PathLike | None = None,
        ca_bundle: PathLike | None = None,
    ) -> Credential:
        """A bearer token acquired elsewhere, used as it is (it is not refreshed)."""
        return sign_in("token", token=token, cloud=cloud, emulator=emulator, ca_bundle=ca_bundle)

    @classmethod
    def device_code(
        cls,
        *,
        tenant: str = "",
        client_id: str = "",
        on_message: Callable[[str], None] | None,
        cache: PathLike | None = None,
        cloud: str = "global",
        emulator: PathLike | None = None,
        ca_bundle: PathLike | None = None,
    ) -> Credential:
        """A person signs in on another device. `on_message` receives the instruction to show
        them ("To sign in, use a web browser to open the page ... and enter the code ...");
        with None, nobody can be asked and a sign-in that needs a person fails at once.
        `cache`: a file (created private) that keeps the refresh token between runs."""
        return sign_in(
            "device_code",
            tenant=tenant,
            client_id=client_id,
            on_message=on_message,
            cache=Path(cache) if cache is not None else None,
            cloud=cloud,
            emulator=emulator,
            ca_bundle=ca_bundle,
        )

    @classmethod
    def managed_identity(
        cls,
        client_id: str | None = None,
        *,
        cloud: str = "global",
        emulator: PathLike | None = None,
        ca_bundle: PathLike | None = None,
    ) -> Credential:
        """An Azure managed identity: system-assigned, or the user-assigned one `client_id`."""
        return sign_in(
            "managed_identity",
            managed_identity_client_id=client_id or "",
            cloud=cloud,
            emulator=emulator,
            ca_bundle=ca_bundle,
        )

    @classmethod
    def from_profile(
        cls,
        name: str = "default",
        *,
        secret: str = "",
        certificate_password: str = "",
        token: str = "",
        on_message: Callable[[str], None] | None = None,
    ) -> Credential:
        """A profile saved by `sharelift login`: its cloud or emulator, sign-in method,
        tenant, client id and certificate, and (device code) its private token cache, so no
        prompt is needed while the refresh token is valid. Profiles never hold secrets: give
        `secret`, `certificate_password` or `token` when the profile's method needs one."""
        profile = load_profile(name)
        if not profile:
            raise AuthError(f"no profile {name!r}; `sharelift login` saves one", option="profile")
        return sign_in(
            profile.get("auth", "device_code"),
            tenant=profile.get("tenant", ""),
            client_id=profile.get("client_id", ""),
            secret=secret,
            certificate=profile.get("certificate") or None,
            certificate_password=certificate_password,
            token=token,
            cloud=profile.get("cloud") or "global",
            emulator=profile.get("emulator") or None,
            on_message=on_message,
            cache=token_cache_path(name),
        )


def sign_in(
    method: str,
    *,
    tenant: str = "",
    client_id: str = "",
    secret: str = "",
    certificate: PathLike | None = None,
    certificate_password: str = "",
    token: str = "",
    managed_identity_client_id: str = "",
    cloud: str = "global",
    emulator: PathLike | None = None,
    ca_bundle: PathLike | None = None,
    on_message: Callable[[str], None] | None = None,
    cache: Path | None = None,
    timeouts: Timeouts | None = None,
) -> Credential:
    """A Credential from the connection options by name (what every constructor, a profile
    and the command line come down to). With `emulator`, the emulator's app fills in the
    client id, secret and certificate not given. `timeouts`: the `connect_timeout` and
    `read_timeout` options (their defaults when None)."""
    timeouts = timeouts or Timeouts()
    where = resolve_cloud(cloud, emulator)
    if ca_bundle:  # added to the trust, never replacing it; verification stays on
        where = replace(where, ca_file=trust_bundle(where.ca_file, os.fspath(ca_bundle)))
    if where.emulator:
        client_id = client_id or str(where.emulator["client_id"])
        if method == "secret" and not secret:
            secret = str(where.emulator.get("client_secret", ""))
        if method == "certificate" and not certificate:
            certificate = _emulator_pem(where.emulator)
    for value in (secret, certificate_password, token):
        add_secret(value)  # never in a log line, wherever it came from
    settings = AuthSettings(
        method=method,
        authority=where.authority(tenant) if method not in ("token", "managed_identity") else "",
        client_id=client_id,
        secret=secret,
        certificate_path=Path(certificate) if certificate else None,
        certificate_password=certificate_password,
        token=token,
        managed_identity_client_id=managed_identity_client_id,
        ca_file=where.ca_file,
        instance_discovery=where.instance_discovery,
        cache_path=cache,
        interactive=on_message is not None,
        prompt=on_message or (lambda message: None),
        timeouts=timeouts,
    )
    return Credential(build_credential(settings), where, method, timeouts)


def _emulator_pem(info: Mapping[str, Any]) -> str:
    """The emulator's app certificate as one PEM (key + certificate) file beside it."""
    cert = info["certificate"]
    combined = Path(cert["key_file"]).with_name("app-combined.pem")
    if not combined.exists():
        data = Path(cert["key_file"]).read_bytes() + Path(cert["cert_file"]).read_bytes()
        fd = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return str(combined)
