"""The SharePoint Import Migration API: the second mover (`sharelift migrate --via migration-api`).

    mover.py     MigrationApiMover: the Mover contract; packages filled, sealed, resumed
    runs.py      PackageRun: one package's containers, blobs, manifests, job, events, proof
    package.py   the package's XML files (ExportSettings, Manifest, SystemData, ...)
    crypto.py    AES-256-CBC with an IV per blob; the key file (0600) until the job ends
    blob.py      Azure Blob Storage: encrypted blobs with IV, MD5 and snapshot; own containers
    jobs.py      the REST calls (provision, submit, progress) and the job queue's envelopes
    site.py      the target's web, list and folder ids through Graph; where REST calls go
    reconcile.py events and logs mapped to files; the folder listings that prove them
    report.py    MigrationJobs.csv: a row per package and job

It shares no code with the emulator's service (`sharelift.emulator.migration`): two readings
of Microsoft's documents (sp-dev-docs `docs/apis/migration-*.md`), each a check on the other.
"""
