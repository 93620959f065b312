# Declarations of the Cython parser core: every constant and struct the parts share, declared
# once before any implementation (see _csvcore.pyx for why the core is shaped this way).
#
# The enums below are the C side of `connectbatch.parser.plan.CoreKind`, `Code` and
# `HeaderStatus`; the compiled module exports them (KINDS, CODES, HEADER_STATUSES) and
# tests/unit/test_parser_enums.py fails if the two sides differ in any name or value.

from libc.stdint cimport int32_t, int64_t, uint8_t


# Converter selector of a column (plan.CoreKind).
cdef enum:
    K_STRING = 0
    K_INTEGER = 1
    K_SECONDS = 2
    K_DECIMAL = 3
    K_TIMESTAMP = 4
    K_ENUM = 5
    K_COUNTRY = 6
    K_CURRENCY = 7
    K_RAW = 8

# Why a record was rejected (plan.Code); 0 means the value was accepted.
cdef enum:
    C_FIELD_COUNT = 1
    C_INVALID_TEXT = 2
    C_NUL_BYTE = 3
    C_REQUIRED_EMPTY = 4
    C_NOT_INTEGER = 5
    C_INT_RANGE = 6
    C_NEGATIVE = 7
    C_NOT_WHOLE = 8
    C_BAD_TIMESTAMP = 9
    C_INVALID_DATE = 10
    C_BAD_DECIMAL = 11
    C_DECIMAL_SCALE = 12
    C_DECIMAL_RANGE = 13
    C_BAD_ENUM = 14
    C_BAD_COUNTRY = 15
    C_BAD_CURRENCY = 16
    C_UNTERMINATED_QUOTE = 17
    C_JUNK_AFTER_QUOTE = 18
    C_CLOCK_RANGE = 19

# What read_header() found (plan.HeaderStatus).
cdef enum:
    H_OK = 0
    H_INCOMPLETE = 1
    H_EMPTY = 2
    H_UNTERMINATED = 3
    H_JUNK = 4

# What the tokenizer found at a position (_next_record's return value).
cdef enum:
    TOK_OOM = -1
    TOK_INCOMPLETE = 0
    TOK_RECORD = 1
    TOK_END = 2

# Field.flags: what the tokenizer saw inside one field.
cdef enum:
    F_QUOTED = 1
    F_ESC = 2        # holds a doubled quote: unescape before use
    F_NUL = 4
    F_HIGH = 8       # holds a non-ASCII byte: validate as UTF-8
    F_BREAK = 16     # a quoted field holding a line break (parser.run_on looks at its record)

# The bytes the tokenizer treats specially (besides the delimiter).
cdef enum:
    LF = 10
    CR = 13
    QUOTE = 34
    DOS_EOF = 26     # Ctrl-Z: a record of only this byte is skipped like a blank line
    SPACE = 32       # a record of only spaces, tabs and delimiters is a blank line too
    TAB = 9


# Byte classes: 0 ordinary, 1 stop, 2 NUL, 3 non-ASCII.
cdef struct Scanner:
    int delim
    uint8_t ucls[256]   # outside quotes: stops at delimiter, CR, LF
    uint8_t qcls[256]   # inside quotes: stops at quote, CR, LF


cdef struct Column:
    # One output slot. Fixed-width kinds fill `data` (8 or 16 bytes a row); text kinds fill
    # `data` with bytes and `offsets` with Arrow int32 offsets. Row `nrows` is written
    # speculatively and only becomes part of the column when the whole record is accepted.
    int kind
    int required
    int non_negative  # K_INTEGER: reject a value below 0 (plan.Slot.non_negative)
    int width
    unsigned char* data
    size_t data_cap
    int32_t* offsets
    uint8_t* valid
    uint8_t* naive
    const unsigned char* dflt
    Py_ssize_t dflt_len
    int nallowed
    const unsigned char** allowed_upper
    const unsigned char** allowed
    Py_ssize_t* allowed_len


cdef struct Field:
    Py_ssize_t start
    Py_ssize_t end
    int flags


cdef struct Record:
    Py_ssize_t start        # offset of the record's first byte
    Py_ssize_t end          # offset just past its last byte (terminator excluded)
    Py_ssize_t next         # offset of the next record
    Py_ssize_t line         # physical line the record starts on
    Py_ssize_t next_line
    Py_ssize_t nfields
    int error               # structural problem (unterminated quote, text after a quote)
    Py_ssize_t error_field
