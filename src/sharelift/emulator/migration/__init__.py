"""The SharePoint Import Migration API of the emulated tenant.

Clients call the `SP.Site` methods (`rest.py`) on a site's `_api/site`; the service
(`service.py`) hands out Azurite containers and queues (`azurite.py`) and queues jobs
(`jobs.py`); the import worker (`worker.py`) reads and checks each package (`blobs.py`,
`package.py`, `crypto.py`), `importer.py` applies its objects to the tenant
(`store_target.py`), small files taken from their archives (`archives.py`), and `joblog.py`
reports the job's events (`events.py`) and writes its logs. docs/emulator.md says what is
checked, after which document, and what is not emulated. None of it is shared with the
client's `sharelift.migration_api`.
"""
