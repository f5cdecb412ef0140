"""A local Microsoft 365 tenant: identity, Graph drives and sites, SharePoint REST, the
Migration API, faults.

It follows Microsoft's documented behaviour rather than sharelift's convenience, and it shares no
wire code with the client (`sharelift.graph`, `sharelift.target`, `sharelift.engine`): two
independent readings of the same documents, so that a misreading in one is caught by the other.

Modules and packages, one role each:
    settings    EmulatorSettings: every knob, with its default; faults are mutable at runtime
    store/      the tenant model in SQLite plus content files; thread-safe; survives restarts:
                tenant (users, sites, drives), items (the tree), folders, files (content and
                the one commit path, with commit hooks), edits (rename, move, copy), versions
                and quota, sessions (upload sessions), changes (the change log behind delta),
                database and schema (named migrations)
    graph/      Graph v1.0 routes by resource: directory (users, sites, drives), items,
                uploads, downloads, versions, delta, copies, batch ($batch); dispatch routes
                them, wire holds Graph's JSON shapes and errors
    identity/   the OAuth 2.0 / OpenID endpoints MSAL talks to: registration and keys, tokens
                (JWTs), client authentication, the token endpoint's grants, device codes,
                managed identity, and the Graph authentication middleware
    sharepoint  SharePoint REST on the admin host (OneDrive pre-provisioning); the app-only
                certificate rule every SharePoint REST call follows
    migration/  the SharePoint Import Migration API: azurite (the storage emulator it runs),
                rest (the SP.Site calls), service (provisioning, job creation), jobs (queue,
                records), worker (a job's import: the package read and checked), importer
                (its objects applied to the tenant), archives (small files read from the
                zips ArchivedFiles.xml lists), joblog (its events, counters and logs),
                package (the XML files), blobs (snapshots, MD5, decryption, logs, queue
                messages), crypto, sas, events, target and store_target (where imported
                items go)
    enrichment/ what a site library does to Office files on commit: ooxml (packages), legacy
                (compound files), the commit hook
    faults/     latency, bandwidth, resource-unit throttling, injected errors and dropped
                connections, as rules run in order by FaultsMiddleware
    asgi        raw-ASGI helpers the middleware layers share (tokens, Graph error bodies)
    observe     JSON-lines request log and counters
    certs       the emulator's own CA, server certificate and app certificate
    app         assembles the ASGI app: routes and middleware
    server      runs it over HTTPS (Hypercorn), in a thread or the foreground
    info        emulator.json: what a client needs to connect
    users_file  the users file (CSV or JSON) read at start
    samples     Office Open XML files to try the libraries with (demo, tests, benchmarks)
"""

from sharelift.emulator.api import Emulator as Emulator
