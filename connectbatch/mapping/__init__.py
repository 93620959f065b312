"""Field mapping: which partner column feeds which of our columns.

`suggest` proposes a mapping from a sample file (names first, then a dictionary of known
call-tracking vendor names, then the values to break ties); `sample` reads that file the
way the parser would (encoding, delimiter, a Google Ads `Parameters:` preamble);
`constants` fills a required column a partner cannot send with a fixed value. Kept out of
the parser so the parser stays a pure reader of what it is told.
"""
