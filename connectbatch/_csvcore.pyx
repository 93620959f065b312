# cython: language_level=3
"""The Cython parser core: UTF-8 CSV bytes in, typed Arrow columns and raw rejects out.

Why it looks like this:
- One pass, no Python objects per cell. Each record is tokenized into field spans, each
  mapped field is converted straight into a growable C buffer, and at the end every buffer
  is handed to Arrow without a copy (`_Owned` exposes the malloc'd memory).
- Row `nrows` of every column is written speculatively; a rejected record simply does not
  advance `nrows`, so nothing needs undoing.
- The hot loop runs without the GIL and returns status codes; it takes the GIL only to
  record a reject, which is rare by construction.
- Streaming: `feed()` takes arbitrary chunks and carries an incomplete last record over, so
  a 400 MB file never has to be in memory at once. A record that stays incomplete is only
  rescanned once the carried bytes have doubled, which keeps a stray quote linear.

The pure-Python `parser/refcore.py` (its cell converters: `parser/refvalues.py`) is the
specification; tests hold this module to it byte for byte.

Layout (asyncpg-style): this file is the single C unit and only wires the parts together.
Constants and structs are declared once in `_csvcore.pxd`; the implementation is included from
`connectbatch/parser/`, one concern per file, so the C compiler still sees (and inlines) it all:
- `_core_scanner.pxi`: byte classes, the tokenizer, read_header();
- `_core_cuts.pxi`: quote parity and where a threaded parse may cut the bytes;
- `_core_values.pxi`: UTF-8 validation and the integer/seconds/decimal/timestamp converters;
- `_core_buffers.pxi`: column buffers, their allocation, the zero-copy hand-over to Arrow;
- `_core_parser.pxi`: the Parser class (the record loop, feed, finish);
- `_core_put.pxi`: one field's value checked, converted and written into its column.
"""

cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

import pyarrow as pa

from connectbatch.parser.plan import COUNTRY_CODES, CURRENCY_CODES, CoreOutput

include "parser/_core_scanner.pxi"
include "parser/_core_cuts.pxi"
include "parser/_core_values.pxi"
include "parser/_core_buffers.pxi"
include "parser/_core_parser.pxi"
include "parser/_core_keys.pxi"
include "parser/_core_put.pxi"


# ------------------------------------------------------------------ the enums, for Python

# The values of the .pxd enums by name, so the Python side can be checked against the C side
# (tests/unit/test_parser_enums.py) instead of trusting two hand-kept copies.
KINDS = {
    "STRING": K_STRING, "INTEGER": K_INTEGER, "SECONDS": K_SECONDS, "DECIMAL": K_DECIMAL,
    "TIMESTAMP": K_TIMESTAMP, "ENUM": K_ENUM, "COUNTRY": K_COUNTRY, "CURRENCY": K_CURRENCY,
    "RAW": K_RAW,
}
CODES = {
    "FIELD_COUNT": C_FIELD_COUNT, "INVALID_TEXT": C_INVALID_TEXT, "NUL_BYTE": C_NUL_BYTE,
    "REQUIRED_EMPTY": C_REQUIRED_EMPTY, "NOT_INTEGER": C_NOT_INTEGER, "INT_RANGE": C_INT_RANGE,
    "NEGATIVE": C_NEGATIVE, "NOT_WHOLE": C_NOT_WHOLE, "BAD_TIMESTAMP": C_BAD_TIMESTAMP,
    "INVALID_DATE": C_INVALID_DATE, "BAD_DECIMAL": C_BAD_DECIMAL,
    "DECIMAL_SCALE": C_DECIMAL_SCALE, "DECIMAL_RANGE": C_DECIMAL_RANGE, "BAD_ENUM": C_BAD_ENUM,
    "BAD_COUNTRY": C_BAD_COUNTRY, "BAD_CURRENCY": C_BAD_CURRENCY,
    "UNTERMINATED_QUOTE": C_UNTERMINATED_QUOTE, "JUNK_AFTER_QUOTE": C_JUNK_AFTER_QUOTE,
    "CLOCK_RANGE": C_CLOCK_RANGE,
}
HEADER_STATUSES = {
    "OK": H_OK, "INCOMPLETE": H_INCOMPLETE, "EMPTY": H_EMPTY, "UNTERMINATED": H_UNTERMINATED,
    "JUNK": H_JUNK,
}
HEADER_OK = H_OK
HEADER_INCOMPLETE = H_INCOMPLETE
HEADER_EMPTY = H_EMPTY
HEADER_UNTERMINATED = H_UNTERMINATED
HEADER_JUNK = H_JUNK
