# Declarations of the Cython parser core (see _csvcore.pyx for why it is shaped this way).

from libc.stdint cimport int32_t, int64_t, uint8_t


cdef struct Column:
    # One output slot. Fixed-width kinds fill `data` (8 or 16 bytes a row); text kinds fill
    # `data` with bytes and `offsets` with Arrow int32 offsets. Row `nrows` is written
    # speculatively and only becomes part of the column when the whole record is accepted.
    int kind
    int required
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
