"""Backup and restore of the whole platform state: the database and the stored objects.

A backup is a folder (a local directory or an ``s3://`` prefix) holding::

    manifest.json        what is inside: versions, schema revision, row counts, checksums
    database.dump        PostgreSQL: pg_dump's custom format
    database.sqlite      or SQLite: a copy made with SQLite's online backup API
    objects/<sha256>     every object of the artifact store, named by its content

The manifest is written last: a folder without one is an unfinished backup and is
never restored. ``mlops backup create|verify|restore`` (cli/backup.py) drive it.
"""
