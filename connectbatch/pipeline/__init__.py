"""What happens to a file once it is received, in order: `ingest` (the ingestor) runs it;
`staging` stages its bytes by sha256 and records it in the ledger; the parser types it;
`validation` runs the batch's suite; `load` puts the good rows, rejects, verdict and actions in
the store in one transaction, or `quarantine` holds the batch for a reviewer; `results` and
`mailer` answer the sender; `recovery` fails the runs of dead processes and retries them;
`lifecycle` moves the pending actions the load created until they lock; `review` words the
verdicts for reviewers; `progress` reports how far a running file has got."""
