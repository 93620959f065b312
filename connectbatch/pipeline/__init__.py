"""What happens to a file once it is received, in order: `ingest` stages it by sha256 and
records it in the ledger, the parser types it, `validation` runs the batch's suite, and the
good rows are loaded in one transaction (or held for review: `review`); `results` and `mailer`
answer the sender; `lifecycle` moves the pending actions the load created until they lock."""
