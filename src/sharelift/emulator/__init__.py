"""A local Microsoft 365 tenant: identity, Graph drives and sites, SharePoint REST, faults.

It follows Microsoft's documented behaviour rather than sharelift's convenience, and it shares no
wire code with the client (`sharelift.graph`, `sharelift.target`, `sharelift.transfer`): two
independent readings of the same documents, so that a misreading in one is caught by the other.

Modules:
    settings    EmulatorSettings: every knob, with its default; faults are mutable at runtime
    store       the tenant model in SQLite (users, sites, drives, items, versions, sessions,
                change log) plus content files; thread-safe; survives restarts
    graph       Graph v1.0 routes: users, sites, drives, items, children, folders, uploads,
                downloads, versions, copy, delta
    wire        Graph's JSON shapes: driveItem, drive, site, user, error bodies
    uploads     upload sessions on their unauthenticated upload URLs
    batch       JSON $batch: inner requests re-enter the whole app, so each is throttled alone
    identity    OAuth 2.0 / OpenID endpoints MSAL talks to; signs and verifies JWTs
    sharepoint  SharePoint REST on the admin host (OneDrive pre-provisioning)
    faults      latency, bandwidth, resource-unit throttling, injected errors and resets
    observe     JSON-lines request log and counters
    certs       the emulator's own CA, server certificate and app certificate
    app         assembles the ASGI app: routes and middleware
    server      runs it over HTTPS (Hypercorn), writes emulator.json, in a thread or the foreground
"""

from sharelift.emulator.api import Emulator as Emulator
