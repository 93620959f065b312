"""Expected delivery: when a connection's files are due, what it usually receives, and the
alerts when that does not happen (late, missing, volume drift, reject spike).

Named `delivery`, not "expectations": those are the great-expectations data checks of
`pipeline.validation`. `cadence` reads an expectation and lays its slots on a calendar,
`learn` infers one from the files received, `check` raises and clears alerts (run by the
engine every few minutes on the pipeline's clock).
"""
