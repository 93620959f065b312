"""Distributed mode (CONNECTBATCH_MODE=distributed): the pipeline on Celery workers with Redis.

One coordinator (`connectbatch serve --coordinator`) owns the DuckDB file, the scheduler, the
hosted push servers and the single loader; N workers (`connectbatch worker`) run the heavy
tasks and never open the database:
- `connectbatch.pull`: list one connection's folder and fetch its new files into the shared
  staging folder (`<staging>/<sha256>`), returning name, sha256, size, remote path and time;
- `connectbatch.parse`: parse and validate one staged file, writing the typed rows (Parquet),
  the rejects and the verdict next to the staged bytes (`output`), keyed by sha256 + run id.
The coordinator records every file in the ledger before a worker parses it, and its loader
thread commits each output in one transaction; a file whose ledger state is no longer
`fetched` is not loaded again, so a task that ran twice (a worker killed before it
acknowledged) changes nothing. Celery is imported only here: embedded mode needs no Redis.
"""
