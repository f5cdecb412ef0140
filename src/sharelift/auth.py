"""Credentials for Microsoft Graph and SharePoint, all through MSAL (never hand-rolled OAuth).

Methods:
    device_code        interactive sign-in on another device (the default for people)
    secret             app-only, client id + secret
    certificate        app-only, client id + certificate (what Microsoft recommends for
                       migrations: https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online)
    managed_identity   an Azure managed identity (VM, App Service, Functions, Arc …)
    token              a bearer token acquired elsewhere

Each answers `token(scopes) -> str` (the `TokenProvider` protocol), thread-safe, from MSAL's
cache while a token is valid; `sharelift.Credential` is the public face of these classes.
Delegated tokens live in a persistent cache file created 0600, so `sharelift login` once serves
later runs. Without a terminal, nothing ever waits for a person: device code fails at once with
an error that says which unattended method to use instead. Errors name the option at fault
(`client_id`, `certificate`) in `AuthError.option`, never a command-line flag.

Secrets and tokens never appear in an exception, a log line or a repr.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msal
import requests
import requests.adapters
from urllib3.util.retry import Retry

from sharelift.errors import AuthError, UsageError
from sharelift.network import Timeouts, describe_failure

METHODS = ("device_code", "secret", "certificate", "managed_identity", "token")


class TokenProvider(Protocol):
    """Something that hands out bearer tokens for a resource."""

    def token(self, scopes: Sequence[str]) -> str:
        """A valid access token for `scopes`; raises AuthError when none can be had."""
        ...


@dataclass(frozen=True)
class AuthSettings:
    """What a credential needs. `secret` and `certificate_password` are never shown."""

    method: str
    authority: str = ""
    """`https://login.microsoftonline.com/{tenant}` (or the emulator's authority)."""
    client_id: str = ""
    secret: str = field(default="", repr=False)
    certificate_path: Path | None = None
    certificate_password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    """The bearer token itself, for the `token` method."""
    managed_identity_client_id: str = ""
    ca_file: str | None = None
    """A CA bundle to trust in addition to (emulator: instead of) the system's."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    """Connect and read timeouts of every call to the identity service."""
    instance_discovery: bool = True
    """False for authorities MSAL cannot validate against Microsoft (the emulator)."""
    cache_path: Path | None = None
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty() and sys.stderr.isatty())
    """Whether a person can be asked (device code); without one, device code fails at once."""
    prompt: Callable[[str], None] = field(
        default=lambda message: print(message, file=sys.stderr, flush=True), repr=False
    )
    """Where the device-code instruction goes."""


def build_credential(settings: AuthSettings) -> TokenProvider:
    """The credential for `settings.method`; raises AuthError naming the option missing."""
    method = settings.method
    if method not in METHODS:
        raise AuthError(f"{method!r}: choose one of {', '.join(METHODS)}", option="auth")
    if method == "token":
        return StaticToken(settings.token)
    if method == "managed_identity":
        return ManagedIdentityCredential(settings)
    if not settings.client_id:
        raise AuthError(
            f"{method} sign-in needs the app registration's client id", option="client_id"
        )
    if not settings.authority:
        raise AuthError(f"{method} sign-in needs the tenant (its id or domain)", option="tenant")
    if method == "secret":
        if not settings.secret:
            raise AuthError("secret sign-in needs the app's client secret", option="client_secret")
        return AppCredential(settings, settings.secret)
    if method == "certificate":
        return AppCredential(settings, load_certificate(settings))
    return DeviceCodeCredential(settings)


class StaticToken:
    """A bearer token acquired elsewhere (automation), used as it is until it expires."""

    def __init__(self, token: str) -> None:
        value = token.strip().removeprefix("Bearer ").strip()
        if not value:
            raise AuthError("token sign-in needs the access token", option="access_token")
        self._token = value

    def token(self, scopes: Sequence[str]) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken()"


def _msal_error(result: dict[str, Any] | None, what: str) -> AuthError:
    # AAD's error_description is safe to show (it never echoes the secret); keep its first line.
    if not result:
        return AuthError(f"{what}: no answer from the identity service")
    description = str(result.get("error_description") or "").splitlines()
    first = description[0] if description else ""
    return AuthError(f"{what}: {result.get('error', 'error')}: {first}".rstrip(": "))


class _TrustingSession(requests.Session):
    """A requests session for MSAL that keeps our CA choice and never waits forever.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's
    `verify` (psf/requests#3829), which would silently drop the emulator's or a company proxy's
    CA. Proxies (HTTPS_PROXY, NO_PROXY) still come from the environment.

    requests has no timeout unless each call names one, and MSAL names none: every request of
    this session gets `timeouts` (connect, a proxy's tunnel included; then read). A connection
    that fails or times out is tried twice more at once (urllib3's retries, no backoff of our
    own): asking the identity service for a token again is harmless.
    """

    def __init__(self, ca_file: str | None, timeouts: Timeouts) -> None:
        super().__init__()
        self.verify = ca_file or True
        self.timeouts = timeouts
        retries = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=None)
        adapter = requests.adapters.HTTPAdapter(max_retries=retries)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (self.timeouts.connect, self.timeouts.read)
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings


def http_session(ca_file: str | None, timeouts: Timeouts | None = None) -> requests.Session:
    """The HTTP session every MSAL client of sharelift uses (TLS always verified, every call
    with a connect and a read timeout)."""
    return _TrustingSession(ca_file, timeouts or Timeouts())


def trust_bundle(*ca_files: str | None) -> str:
    """One PEM bundle: the system's CAs, certifi's, and each of `ca_files` (a company proxy's
    CA, the emulator's), written to a private temporary file removed when the process ends.

    requests (under MSAL) takes a single CA file that replaces the default trust, so adding a
    CA means handing it everything else too. Raises UsageError naming an unreadable file or
    one without a PEM certificate.
    """
    import atexit
    import ssl
    import tempfile

    import certifi

    parts: list[bytes] = []
    system = ssl.get_default_verify_paths().cafile
    for path in (system, certifi.where()):
        if path and os.path.isfile(path):
            parts.append(Path(path).read_bytes())
    for extra in ca_files:
        if not extra:
            continue
        try:
            data = Path(extra).read_bytes()
        except OSError as exc:
            raise UsageError(f"CA bundle {extra}: {exc.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise UsageError(f"CA bundle {extra}: no PEM certificate in it")
        parts.append(data)
    fd, name = tempfile.mkstemp(prefix="sharelift-ca-", suffix=".pem")  # created 0600
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"\n".join(p.rstrip(b"\n") + b"\n" for p in parts))
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return name


class _Cached:
    """A persistent MSAL token cache in a private file (0600, folder 0700)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.cache = msal.SerializableTokenCache()
        if path is not None and path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise AuthError(
                    f"token cache {path} is readable by others (mode {mode:o}); "
                    "run `chmod 600` on it or delete it"
                )
            self.cache.deserialize(path.read_text(encoding="utf-8"))

    def save(self) -> None:
        if self.path is None or not self.cache.has_state_changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.cache.serialize())
        os.replace(tmp, self.path)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _unreachable(exc: requests.RequestException, settings: AuthSettings) -> AuthError:
    """The identity service could not be reached: one line naming its host, the proxy in use
    and what to check, without echoing the request (requests' own messages carry the URL)."""
    request = getattr(exc, "request", None)
    url = str(getattr(request, "url", "") or settings.authority or "https://identity")
    line = describe_failure(exc, url, settings.timeouts)
    option = "ca_bundle" if isinstance(exc, requests.exceptions.SSLError) else None
    return AuthError(f"sign-in failed: {line}", option=option)


class AppCredential:
    """App-only (client credentials) with a secret or a certificate."""

    def __init__(self, settings: AuthSettings, credential: str | dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._session = http_session(settings.ca_file, settings.timeouts)
        try:  # MSAL reads the authority's OpenID configuration here already
            self._app = msal.ConfidentialClientApplication(
                settings.client_id,
                authority=settings.authority,
                client_credential=credential,
                http_client=self._session,
                instance_discovery=settings.instance_discovery,
            )
        except requests.RequestException as exc:
            raise _unreachable(exc, settings) from None
        self._client_id = settings.client_id

    def token(self, scopes: Sequence[str]) -> str:
        with self._lock:
            try:
                result = self._app.acquire_token_for_client(scopes=list(scopes))
            except ValueError as exc:  # raised by MSAL for e.g. an unusable authority
                raise AuthError(f"app sign-in for client {self._client_id}: {exc}") from None
            except requests.RequestException as exc:
                raise _unreachable(exc, self._settings) from None
        if not result or "access_token" not in result:
            raise _msal_error(result, f"app sign-in for client {self._client_id} failed")
        return str(result["access_token"])

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"AppCredential(client_id={self._client_id!r})"


class DeviceCodeCredential:
    """Delegated sign-in by device code, with a persistent private cache of refresh tokens."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._cache = _Cached(settings.cache_path)
        self._session = http_session(settings.ca_file, settings.timeouts)
        try:  # MSAL reads the authority's OpenID configuration here already
            self._app = msal.PublicClientApplication(
                settings.client_id,
                authority=settings.authority,
                token_cache=self._cache.cache,
                http_client=self._session,
                instance_discovery=settings.instance_discovery,
            )
        except requests.RequestException as exc:
            raise _unreachable(exc, settings) from None

    def token(self, scopes: Sequence[str]) -> str:
        with self._lock:
            try:
                result = self._silent(scopes)
                if result is None:
                    result = self._device_flow(scopes)
            except requests.RequestException as exc:
                raise _unreachable(exc, self._settings) from None
            finally:
                self._cache.save()
        if "access_token" not in result:
            raise _msal_error(result, "sign-in failed")
        return str(result["access_token"])

    def _silent(self, scopes: Sequence[str]) -> dict[str, Any] | None:
        for account in self._app.get_accounts():
            result = self._app.acquire_token_silent(list(scopes), account=account)
            if result and "access_token" in result:
                return dict(result)
        return None

    def _device_flow(self, scopes: Sequence[str]) -> dict[str, Any]:
        if not self._settings.interactive:
            raise AuthError(
                "device-code sign-in needs a person, and there is no terminal (or callback) to "
                "ask one; sign in once where a person can (`sharelift login`), or use "
                "certificate, secret, managed_identity or token sign-in for unattended runs",
                option="auth",
            )
        flow = self._app.initiate_device_flow(scopes=list(scopes))
        if "user_code" not in flow:
            raise _msal_error(flow, "could not start device-code sign-in")
        self._settings.prompt(str(flow["message"]))
        return dict(self._app.acquire_token_by_device_flow(flow))

    def accounts(self) -> list[str]:
        """The usernames signed in through this cache."""
        return [str(a.get("username", "")) for a in self._app.get_accounts()]

    def sign_out(self) -> None:
        """Forget every account and delete the cache file."""
        for account in self._app.get_accounts():
            self._app.remove_account(account)
        self._cache.clear()

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return f"DeviceCodeCredential(client_id={self._settings.client_id!r})"


class ManagedIdentityCredential:
    """An Azure managed identity, system-assigned or user-assigned, through MSAL."""

    def __init__(self, settings: AuthSettings) -> None:
        session = http_session(settings.ca_file, settings.timeouts)
        identity: msal.SystemAssignedManagedIdentity | msal.UserAssignedManagedIdentity
        if settings.managed_identity_client_id:
            identity = msal.UserAssignedManagedIdentity(
                client_id=settings.managed_identity_client_id
            )
        else:
            identity = msal.SystemAssignedManagedIdentity()
        self._settings = settings
        self._session = session
        self._client = msal.ManagedIdentityClient(identity, http_client=session)
        self._lock = threading.Lock()

    def token(self, scopes: Sequence[str]) -> str:
        # Managed identity speaks in resources, not scopes: "https://graph.microsoft.com".
        resources = {s.removesuffix("/.default") for s in scopes}
        if len(resources) != 1:
            raise AuthError("a managed identity token is for one resource at a time")
        with self._lock:
            try:
                result = self._client.acquire_token_for_client(resource=resources.pop())
            except requests.RequestException as exc:
                raise _unreachable(exc, self._settings) from None
            except Exception as exc:  # MSAL raises plain exceptions here
                raise AuthError(f"managed identity unavailable: {type(exc).__name__}") from None
        if not result or "access_token" not in result:
            raise _msal_error(result, "managed identity sign-in failed")
        return str(result["access_token"])

    def close(self) -> None:
        self._session.close()

    def __repr__(self) -> str:
        return "ManagedIdentityCredential()"


def token_cache_path(profile: str) -> Path:
    """The private token cache of a profile (refresh tokens of device-code sign-in)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("sharelift")) / "tokens" / f"{profile}.json"


def _profiles_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("sharelift")) / "profiles.json"


_PROFILE_KEYS = ("cloud", "emulator", "auth", "tenant", "client_id", "certificate")


def load_profile(name: str) -> dict[str, str]:
    """A profile saved by `sharelift login` ({} when there is none). Profiles hold where and
    how to sign in, never a secret or a token (those live in the private token cache)."""
    path = _profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthError(f"{path} is unreadable ({exc}); fix or delete it") from None
    profile = data.get(name, {}) if isinstance(data, dict) else {}
    return {k: str(v) for k, v in profile.items() if k in _PROFILE_KEYS and v}


def save_profile(name: str, values: dict[str, str]) -> Path:
    """Create or replace a profile; returns the file it is kept in."""
    path = _profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[name] = {k: v for k, v in values.items() if k in _PROFILE_KEYS and v}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return path


def delete_profile(name: str) -> bool:
    """Forget a profile; True when there was one."""
    path = _profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or name not in data:
        return False
    del data[name]
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    return True


def load_certificate(settings: AuthSettings) -> dict[str, str]:
    """Read a PEM (key + certificate) or PFX/PKCS#12 file into MSAL's certificate credential.

    MSAL wants the private key as PEM and the certificate's SHA-1 thumbprint (hex); we also give
    the public certificate so that certificate rotation by subject name works.
    """
    # Imported here: only certificate sign-in needs it, and it costs every run ~30 ms.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    path = settings.certificate_path
    if path is None:
        raise AuthError(
            "certificate sign-in needs a certificate file (PEM or PFX)", option="certificate"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuthError(f"{path}: {exc.strerror}", option="certificate") from None
    password = settings.certificate_password.encode() or None
    try:
        if path.suffix.lower() in {".pfx", ".p12"}:
            key, cert, _ = pkcs12.load_key_and_certificates(data, password)
        else:
            key = serialization.load_pem_private_key(data, password)
            cert = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        if "password" in str(exc).lower():
            raise AuthError(
                f"{path}: wrong or missing password", option="certificate_password"
            ) from None
        raise AuthError(
            f"{path}: unreadable (need a private key and a certificate)", option="certificate"
        ) from None
    if key is None or cert is None:
        raise AuthError(f"{path}: needs both a private key and a certificate", option="certificate")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "private_key": key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 (x5t is SHA-1)
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }
