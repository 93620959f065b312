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

The pure-Python `_refcore` is the specification; tests hold this module to it byte for byte.
"""

cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import pyarrow as pa

from connectbatch.parser.plan import COUNTRY_CODES, CURRENCY_CODES, CoreOutput

# Keep in sync with csvplan.CoreKind / csvplan.Code and _refcore.HEADER_*.
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
    C_UNTERMINATED = 17
    C_JUNK = 18

HEADER_OK, HEADER_INCOMPLETE, HEADER_EMPTY, HEADER_UNTERMINATED, HEADER_JUNK = range(5)

DEF TOK_OOM = -1
cdef enum:
    TOK_INCOMPLETE = 0
    TOK_RECORD = 1
    TOK_END = 2

cdef enum:
    F_QUOTED = 1
    F_ESC = 2
    F_NUL = 4
    F_HIGH = 8

cdef enum:
    LF = 10
    CR = 13
    QUOTE = 34

# Byte classes: 0 ordinary, 1 stop, 2 NUL, 3 non-ASCII.
cdef struct Scanner:
    int delim
    uint8_t ucls[256]   # outside quotes: stops at delimiter, CR, LF
    uint8_t qcls[256]   # inside quotes: stops at quote, CR, LF

cdef uint8_t COUNTRY_TABLE[676]
cdef uint8_t CURRENCY_TABLE[17576]
cdef int32_t DAYS_BEFORE_MONTH[13]
cdef int DAYS_IN_MONTH[13]


cdef void _init_tables():
    cdef int i
    memset(COUNTRY_TABLE, 0, sizeof(COUNTRY_TABLE))
    memset(CURRENCY_TABLE, 0, sizeof(CURRENCY_TABLE))
    for code in COUNTRY_CODES:
        COUNTRY_TABLE[(code[0] - 65) * 26 + (code[1] - 65)] = 1
    for code in CURRENCY_CODES:
        CURRENCY_TABLE[((code[0] - 65) * 26 + (code[1] - 65)) * 26 + (code[2] - 65)] = 1
    cdef int dim[13]
    dim[:] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    for i in range(13):
        DAYS_IN_MONTH[i] = dim[i]


_init_tables()

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    /* glibc raises its mmap threshold after the first large free, after which growing
       column buffers live on the heap and realloc copies them, leaving holes behind.
       A fixed threshold keeps every large buffer in its own mapping, so realloc is an
       mremap (no copy) and the parse's peak memory stays close to its output size. */
    static void cb_fix_mmap_threshold(void) { mallopt(M_MMAP_THRESHOLD, 256 * 1024); }
    #else
    static void cb_fix_mmap_threshold(void) {}
    #endif
    """
    void cb_fix_mmap_threshold()

cb_fix_mmap_threshold()


cdef void _init_scanner(Scanner* s, int delim) noexcept:
    cdef int c
    s.delim = delim
    for c in range(256):
        s.ucls[c] = 3 if c >= 128 else 0
        s.qcls[c] = 3 if c >= 128 else 0
    s.ucls[0] = 2
    s.qcls[0] = 2
    s.ucls[delim] = 1
    s.ucls[CR] = 1
    s.ucls[LF] = 1
    s.qcls[QUOTE] = 1
    s.qcls[CR] = 1
    s.qcls[LF] = 1


# ------------------------------------------------------------------ tokenizer

cdef enum:
    ONES = 0x0101010101010101
    HIGHS = 0x8080808080808080


cdef inline uint64_t _load64(const unsigned char* p) noexcept nogil:
    cdef uint64_t w
    memcpy(&w, p, 8)
    return w


cdef inline uint64_t _zero_bytes(uint64_t v) noexcept nogil:
    # Non-zero iff some byte of v is zero (the classic SWAR test; exact as a boolean).
    return (v - <uint64_t>ONES) & ~v & <uint64_t>HIGHS


cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define CB_SWAR 1
    static inline int cb_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    #else
    #define CB_SWAR 0
    static inline int cb_ctz64(unsigned long long x) { return 0; }
    #endif
    """
    const int CB_SWAR
    int cb_ctz64(unsigned long long x) noexcept nogil


cdef inline Py_ssize_t _skip_plain(const unsigned char* p, Py_ssize_t n, Py_ssize_t pos,
                                   uint64_t stop, const uint8_t* cls) noexcept nogil:
    """Position of the first byte at or after `pos` that is `stop` (delimiter or quote,
    broadcast to 8 bytes), CR, LF, NUL or non-ASCII (per `cls`); n if none.

    Eight bytes at a time: each test marks candidate bytes in its lowest set bit exactly
    (borrows only spoil bits above a true hit), so the lowest bit of the union is the first
    candidate on little-endian machines. Elsewhere the byte loop does all the work.
    """
    cdef uint64_t w, m
    if pos < n and cls[p[pos]] != 0:  # empty fields are common: no word test for them
        return pos
    if CB_SWAR:
        while pos + 8 <= n:
            w = _load64(p + pos)
            # Candidates: bytes below 0x20 (CR, LF, NUL, but also tab), non-ASCII bytes, and
            # `stop`. Two tests instead of five; a false alarm (a tab) costs one byte step.
            m = (((w - <uint64_t>ONES * 0x20) | w) & <uint64_t>HIGHS) | _zero_bytes(w ^ stop)
            if m:
                pos += cb_ctz64(m) >> 3
                if cls[p[pos]] != 0:
                    return pos
                pos += 1
                continue
            pos += 8
    while pos < n and cls[p[pos]] == 0:
        pos += 1
    return pos


cdef int _next_record(const Scanner* sc, const unsigned char* p, Py_ssize_t n,
                      Py_ssize_t pos, Py_ssize_t line, bint final,
                      Field** fields, Py_ssize_t* fcap, Record* rec) noexcept nogil:
    """Find the next record at or after `pos`, skipping blank lines.

    Returns TOK_RECORD (rec and fields filled), TOK_END (no record left; rec.next/next_line
    say how far blank lines were consumed), TOK_INCOMPLETE (rec.start/line mark the record
    that needs more bytes) or TOK_OOM.
    """
    cdef Py_ssize_t nf, fstart
    cdef int flags, k
    cdef unsigned char c
    cdef int delim = sc.delim
    cdef uint64_t dstop = <uint64_t>ONES * <uint64_t>sc.delim
    cdef uint64_t qstop = <uint64_t>ONES * <uint64_t>QUOTE
    cdef Field* f
    cdef Field* grown
    # Skip blank lines.
    while pos < n:
        c = p[pos]
        if c == LF:
            pos += 1
        elif c == CR:
            if pos + 1 < n:
                pos += 2 if p[pos + 1] == LF else 1
            elif not final:
                break
            else:
                pos += 1
        else:
            break
        line += 1
    rec.start = pos
    rec.line = line
    rec.error = 0
    rec.error_field = -1
    if pos >= n or (p[pos] == CR and pos + 1 == n and not final):
        if pos >= n:
            rec.next = pos
            rec.next_line = line
            return TOK_END
        return TOK_INCOMPLETE
    nf = 0
    while True:
        if nf == fcap[0]:
            grown = <Field*>realloc(fields[0], <size_t>(fcap[0] * 2) * sizeof(Field))
            if grown == NULL:
                return TOK_OOM
            fields[0] = grown
            fcap[0] *= 2
        f = &fields[0][nf]
        fstart = pos
        flags = 0
        if pos < n and p[pos] == QUOTE:
            flags = F_QUOTED
            pos += 1
            f.start = pos
            while True:
                pos = _skip_plain(p, n, pos, qstop, sc.qcls)
                if pos >= n:
                    if not final:
                        return TOK_INCOMPLETE
                    f.end = pos
                    f.flags = flags
                    if rec.error == 0:
                        rec.error = C_UNTERMINATED
                        rec.error_field = nf
                    nf += 1
                    rec.end = pos
                    rec.next = pos
                    rec.next_line = line
                    rec.nfields = nf
                    return TOK_RECORD
                c = p[pos]
                if c == QUOTE:
                    if pos + 1 < n:
                        if p[pos + 1] == QUOTE:
                            flags |= F_ESC
                            pos += 2
                            continue
                    elif not final:
                        return TOK_INCOMPLETE
                    f.end = pos
                    pos += 1
                    break
                elif c == LF:
                    line += 1
                    pos += 1
                elif c == CR:
                    if pos + 1 < n:
                        if p[pos + 1] != LF:
                            line += 1
                    elif not final:
                        return TOK_INCOMPLETE
                    else:
                        line += 1
                    pos += 1
                else:
                    flags |= F_NUL if c == 0 else F_HIGH
                    pos += 1
            if pos < n and sc.ucls[p[pos]] != 1:
                # Text after the closing quote: keep the field's raw bytes as its value.
                if rec.error == 0:
                    rec.error = C_JUNK
                    rec.error_field = nf
                flags = 0
                f.start = fstart
                while pos < n:
                    k = sc.ucls[p[pos]]
                    if k == 1:
                        break
                    if k == 2:
                        flags |= F_NUL
                    elif k == 3:
                        flags |= F_HIGH
                    pos += 1
                f.end = pos
            f.flags = flags
        else:
            f.start = pos
            while True:
                pos = _skip_plain(p, n, pos, dstop, sc.ucls)
                if pos >= n:
                    break
                k = sc.ucls[p[pos]]
                if k == 1:
                    break
                flags |= F_NUL if k == 2 else F_HIGH
                pos += 1
            f.end = pos
            f.flags = flags
        nf += 1
        if pos >= n:
            if not final:
                return TOK_INCOMPLETE
            rec.end = pos
            rec.next = pos
            rec.next_line = line
            rec.nfields = nf
            return TOK_RECORD
        c = p[pos]
        if c == delim:
            pos += 1
            continue
        rec.end = pos
        if c == CR:
            if pos + 1 < n:
                pos += 2 if p[pos + 1] == LF else 1
            elif not final:
                return TOK_INCOMPLETE
            else:
                pos += 1
        else:
            pos += 1
        rec.next = pos
        rec.next_line = line + 1
        rec.nfields = nf
        return TOK_RECORD


# ------------------------------------------------------------------ value checks

cdef inline bint _utf8_valid(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Strict UTF-8, as Python's decoder: no overlongs, no surrogates, nothing past U+10FFFF."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c, c1
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            continue
        if c < 0xC2 or c > 0xF4:
            return False
        if c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
            continue
        if i + 1 >= n:
            return False
        c1 = s[i + 1]
        if (c1 & 0xC0) != 0x80:
            return False
        if c < 0xF0:
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F):
                return False
            if i + 2 >= n or (s[i + 2] & 0xC0) != 0x80:
                return False
            i += 3
            continue
        if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
            return False
        if i + 3 >= n or (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
            return False
        i += 4
    return True


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return c >= 48 and c <= 57


cdef inline int _parse_integer(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef bint over = False
    cdef uint64_t acc = 0
    cdef uint64_t limit
    cdef unsigned char c
    if s[0] == 43 or s[0] == 45:  # + -
        neg = s[0] == 45
        i = 1
    if i == n:
        return C_NOT_INTEGER
    limit = 9223372036854775808ULL if neg else 9223372036854775807ULL
    if n - i <= 18:  # cannot overflow: skip the per-digit check
        while i < n:
            c = s[i]
            if not _is_digit(c):
                return C_NOT_INTEGER
            acc = acc * 10 + (c - 48)
            i += 1
    while i < n:
        c = s[i]
        if not _is_digit(c):
            return C_NOT_INTEGER
        if not over:
            if acc > (limit - (c - 48)) // 10:
                over = True
            else:
                acc = acc * 10 + (c - 48)
        i += 1
    if over:
        return C_INT_RANGE
    out[0] = -<int64_t>(acc - 1) - 1 if neg and acc > 0 else <int64_t>acc
    return 0


cdef inline int _parse_seconds(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef bint over = False
    cdef bint fraction = False
    cdef uint64_t acc = 0
    cdef Py_ssize_t digits = 0
    cdef unsigned char c
    if s[0] == 43 or s[0] == 45:
        neg = s[0] == 45
        i = 1
    while i < n and _is_digit(s[i]):
        c = s[i]
        if not over:
            if acc > (9223372036854775807ULL - (c - 48)) // 10:
                over = True
            else:
                acc = acc * 10 + (c - 48)
        digits += 1
        i += 1
    if digits == 0:
        return C_NOT_INTEGER
    if i < n:
        if s[i] != 46:  # .
            return C_NOT_INTEGER
        i += 1
        while i < n:
            if not _is_digit(s[i]):
                return C_NOT_INTEGER
            if s[i] != 48:
                fraction = True
            i += 1
    if over:
        return C_INT_RANGE
    if neg and acc > 0:
        return C_NEGATIVE
    if fraction:
        return C_NOT_WHOLE
    out[0] = <int64_t>acc
    return 0


cdef inline int _parse_decimal(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    """Currency amount -> cents: [sign][$][sign] digits (or 1-3 digits then ,ddd groups)
    [.digits]; at most one sign; at most 2 decimals unless the extra ones are zeros."""
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef int signs = 0
    cdef Py_ssize_t run, sig = 0, frac_len = 0, int_digits = 0
    cdef uint64_t whole = 0
    cdef int64_t frac2 = 0
    cdef bint frac_extra = False
    cdef unsigned char c
    if i < n and (s[i] == 43 or s[i] == 45):
        neg = s[i] == 45
        signs += 1
        i += 1
    if i < n and s[i] == 36:  # $
        i += 1
    if i < n and (s[i] == 43 or s[i] == 45):
        neg = neg or s[i] == 45
        signs += 1
        i += 1
    if signs > 1:
        return C_BAD_DECIMAL
    run = 0
    while i < n and _is_digit(s[i]):
        c = s[i]
        if sig > 0 or c != 48:
            sig += 1
            if sig <= 17:
                whole = whole * 10 + (c - 48)
        run += 1
        i += 1
    int_digits = run
    if i < n and s[i] == 44:  # , thousands groups
        if run < 1 or run > 3:
            return C_BAD_DECIMAL
        while i < n and s[i] == 44:
            if i + 4 > n or not (_is_digit(s[i + 1]) and _is_digit(s[i + 2]) and _is_digit(s[i + 3])):
                return C_BAD_DECIMAL
            for run in range(1, 4):
                c = s[i + run]
                if sig > 0 or c != 48:
                    sig += 1
                    if sig <= 17:
                        whole = whole * 10 + (c - 48)
            int_digits += 3
            i += 4
    if i < n and s[i] == 46:  # .
        i += 1
        while i < n and _is_digit(s[i]):
            c = s[i]
            if frac_len < 2:
                frac2 = frac2 * 10 + (c - 48)
            elif c != 48:
                frac_extra = True
            frac_len += 1
            i += 1
    if i != n or (int_digits == 0 and frac_len == 0):
        return C_BAD_DECIMAL
    if sig > 16:
        return C_DECIMAL_RANGE
    if frac_extra:
        return C_DECIMAL_SCALE
    if frac_len == 1:
        frac2 *= 10
    out[0] = <int64_t>whole * 100 + frac2
    if neg:
        out[0] = -out[0]
    return 0


cdef inline int _two(const unsigned char* s, Py_ssize_t i) noexcept nogil:
    return (s[i] - 48) * 10 + (s[i + 1] - 48)


cdef inline bint _digits(const unsigned char* s, Py_ssize_t i, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(i, i + count):
        if not _is_digit(s[j]):
            return False
    return True


cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    # H. Hinnant's algorithm, as in _refcore._days_from_civil.
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int _parse_timestamp(const unsigned char* s, Py_ssize_t n, int64_t* out,
                                 bint* naive) noexcept nogil:
    cdef int year, month, day, hour = 0, minute = 0, second = 0, dim
    cdef int64_t frac = 0, offset = 0
    cdef Py_ssize_t i, fd
    cdef int oh, om
    cdef bint leap, has_tz = False
    cdef unsigned char c
    if n < 10 or not (_digits(s, 0, 4) and s[4] == 45 and _digits(s, 5, 2) and s[7] == 45
                      and _digits(s, 8, 2)):
        return C_BAD_TIMESTAMP
    year = (s[0] - 48) * 1000 + (s[1] - 48) * 100 + _two(s, 2)
    month = _two(s, 5)
    day = _two(s, 8)
    if n > 10:
        c = s[10]
        if not (c == 84 or c == 116 or c == 32):  # T t space
            return C_BAD_TIMESTAMP
        if n < 16 or not (_digits(s, 11, 2) and s[13] == 58 and _digits(s, 14, 2)):
            return C_BAD_TIMESTAMP
        hour = _two(s, 11)
        minute = _two(s, 14)
        i = 16
        if i < n and s[i] == 58:  # :SS
            if i + 3 > n or not _digits(s, i + 1, 2):
                return C_BAD_TIMESTAMP
            second = _two(s, i + 1)
            i += 3
            if i < n and (s[i] == 46 or s[i] == 44):  # . or ,
                i += 1
                fd = 0
                while i < n and _is_digit(s[i]):
                    if fd < 6:
                        frac = frac * 10 + (s[i] - 48)
                    fd += 1
                    i += 1
                if fd == 0 or fd > 9:
                    return C_BAD_TIMESTAMP
                while fd < 6:
                    frac *= 10
                    fd += 1
        if i < n and s[i] == 32:
            i += 1
            if i >= n:
                return C_BAD_TIMESTAMP
        if i < n:
            c = s[i]
            if c == 90 or c == 122:  # Z z
                has_tz = True
                i += 1
            elif c == 43 or c == 45:
                if i + 3 > n or not _digits(s, i + 1, 2):
                    return C_BAD_TIMESTAMP
                oh = _two(s, i + 1)
                om = 0
                if i + 3 == n:
                    i += 3
                elif s[i + 3] == 58:
                    if i + 6 != n or not _digits(s, i + 4, 2):
                        return C_BAD_TIMESTAMP
                    om = _two(s, i + 4)
                    i += 6
                else:
                    if i + 5 != n or not _digits(s, i + 3, 2):
                        return C_BAD_TIMESTAMP
                    om = _two(s, i + 3)
                    i += 5
                if oh > 23 or om > 59:
                    return C_INVALID_DATE
                offset = (oh * 3600 + om * 60) * (-1 if c == 45 else 1)
                has_tz = True
            else:
                return C_BAD_TIMESTAMP
        if i != n:
            return C_BAD_TIMESTAMP
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if 1 <= month <= 12:
        dim = 29 if month == 2 and leap else DAYS_IN_MONTH[month]
    else:
        dim = 0
    if year < 1 or day < 1 or day > dim or hour > 23 or minute > 59 or second > 59:
        return C_INVALID_DATE
    out[0] = ((_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
               - offset) * 1000000 + frac)
    if out[0] < -62135596800000000LL or out[0] > 253402300799999999LL:  # past year 1 or 9999 in UTC
        return C_INVALID_DATE
    naive[0] = not has_tz
    return 0


# ------------------------------------------------------------------ zero-copy buffers

cdef class _Owned:
    """A malloc'd block handed to Arrow through the buffer protocol; freed with its last user."""
    cdef void* ptr
    cdef Py_ssize_t size

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, self.ptr, self.size, 1, flags)

    def __releasebuffer__(self, Py_buffer* view):
        pass

    def __dealloc__(self):
        free(self.ptr)


cdef object _to_arrow_buffer(void** ptr, Py_ssize_t size):
    """Move ownership of *ptr into an Arrow buffer (the caller's pointer is cleared)."""
    cdef _Owned owned = _Owned.__new__(_Owned)
    owned.ptr = ptr[0]
    owned.size = size
    ptr[0] = NULL
    return pa.py_buffer(owned)


# ------------------------------------------------------------------ the parser

cdef enum:
    FIXED_INITIAL_ROWS = 1024


@cython.final
cdef class Parser:
    """Feed UTF-8 chunks; `finish()` returns a csvplan.CoreOutput."""

    cdef Scanner sc
    cdef Column* cols
    cdef int ncols_out
    cdef Py_ssize_t ncols_file
    cdef int* field_slot
    cdef Field* fields
    cdef Py_ssize_t fcap
    cdef int64_t* lines
    cdef Py_ssize_t cap
    cdef Py_ssize_t nrows_
    cdef Py_ssize_t line
    cdef unsigned char* scratch
    cdef Py_ssize_t scratch_cap
    cdef int oom
    cdef int too_big
    cdef bytearray pending
    cdef Py_ssize_t rescan_at
    cdef bint finished
    cdef list rejects
    cdef dict reject_keys
    cdef int key_slot
    cdef list keep  # Python objects whose bytes the Column structs point into
    cdef object plan

    def __cinit__(self, plan, Py_ssize_t first_line):
        cdef int i, j
        cdef Column* col
        self.plan = plan
        self.keep = []
        self.rejects = []
        self.reject_keys = {}
        self.key_slot = plan.key_slot
        self.pending = bytearray()
        self.line = first_line
        _init_scanner(&self.sc, plan.delimiter)
        self.ncols_file = len(plan.field_slot)
        self.ncols_out = len(plan.slots)
        self.field_slot = <int*>malloc(max(1, self.ncols_file) * sizeof(int))
        self.cols = <Column*>malloc(max(1, self.ncols_out) * sizeof(Column))
        self.fcap = 64
        self.fields = <Field*>malloc(self.fcap * sizeof(Field))
        self.scratch_cap = 4096
        self.scratch = <unsigned char*>malloc(self.scratch_cap)
        self.cap = FIXED_INITIAL_ROWS
        self.lines = <int64_t*>malloc(self.cap * sizeof(int64_t))
        if not (self.field_slot and self.cols and self.fields and self.scratch and self.lines):
            raise MemoryError()
        memset(self.cols, 0, max(1, self.ncols_out) * sizeof(Column))
        for i in range(self.ncols_file):
            self.field_slot[i] = plan.field_slot[i]
        for i, slot in enumerate(plan.slots):
            col = &self.cols[i]
            col.kind = int(slot.kind)
            col.required = bool(slot.required)
            col.width = 16 if col.kind == K_DECIMAL else (
                8 if col.kind in (K_INTEGER, K_SECONDS, K_TIMESTAMP) else 0)
            if slot.default is not None:
                self.keep.append(slot.default)
                col.dflt = slot.default
                col.dflt_len = len(slot.default)
            col.nallowed = len(slot.allowed)
            if col.nallowed:
                col.allowed = <const unsigned char**>malloc(col.nallowed * sizeof(void*))
                col.allowed_upper = <const unsigned char**>malloc(col.nallowed * sizeof(void*))
                col.allowed_len = <Py_ssize_t*>malloc(col.nallowed * sizeof(Py_ssize_t))
                if not (col.allowed and col.allowed_upper and col.allowed_len):
                    raise MemoryError()
                for j, value in enumerate(slot.allowed):
                    upper = value.upper()
                    self.keep.append(value)
                    self.keep.append(upper)
                    col.allowed[j] = value
                    col.allowed_upper[j] = upper
                    col.allowed_len[j] = len(value)
            if col.width:
                col.data = <unsigned char*>malloc(self.cap * col.width)
                col.data_cap = self.cap * col.width
            else:
                col.data_cap = 65536
                col.data = <unsigned char*>malloc(col.data_cap)
                col.offsets = <int32_t*>malloc((self.cap + 1) * sizeof(int32_t))
                if col.offsets == NULL:
                    raise MemoryError()
                col.offsets[0] = 0
            col.valid = <uint8_t*>malloc((self.cap + 7) // 8)
            if col.kind == K_TIMESTAMP:
                col.naive = <uint8_t*>malloc((self.cap + 7) // 8)
                if col.naive == NULL:
                    raise MemoryError()
            if col.data == NULL or col.valid == NULL:
                raise MemoryError()

    def __dealloc__(self):
        cdef int i
        if self.cols != NULL:
            for i in range(self.ncols_out):
                free(self.cols[i].data)
                free(self.cols[i].offsets)
                free(self.cols[i].valid)
                free(self.cols[i].naive)
                free(self.cols[i].allowed)
                free(self.cols[i].allowed_upper)
                free(self.cols[i].allowed_len)
            free(self.cols)
        free(self.field_slot)
        free(self.fields)
        free(self.scratch)
        free(self.lines)

    @property
    def rows(self):
        return self.nrows_

    # -------------------------------------------------------------- growth

    cdef int _grow_rows(self) noexcept nogil:
        cdef Py_ssize_t newcap = self.cap * 2
        cdef int i
        cdef Column* col
        cdef void* p
        p = realloc(self.lines, newcap * sizeof(int64_t))
        if p == NULL:
            return -1
        self.lines = <int64_t*>p
        for i in range(self.ncols_out):
            col = &self.cols[i]
            if col.width:
                p = realloc(col.data, newcap * col.width)
                if p == NULL:
                    return -1
                col.data = <unsigned char*>p
                col.data_cap = newcap * col.width
            else:
                p = realloc(col.offsets, (newcap + 1) * sizeof(int32_t))
                if p == NULL:
                    return -1
                col.offsets = <int32_t*>p
            p = realloc(col.valid, (newcap + 7) // 8)
            if p == NULL:
                return -1
            col.valid = <uint8_t*>p
            if col.naive != NULL:
                p = realloc(col.naive, (newcap + 7) // 8)
                if p == NULL:
                    return -1
                col.naive = <uint8_t*>p
        self.cap = newcap
        return 0

    # -------------------------------------------------------------- writing one value

    cdef inline int _put_text(self, Column* col, const unsigned char* s, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t row = self.nrows_
        cdef size_t used = <size_t>col.offsets[row]
        cdef size_t need = used + <size_t>n
        cdef unsigned char* dst
        if need > col.data_cap and self._grow_text(col, need) != 0:
            return -1
        dst = col.data + used
        # Most values are short: fixed-size overlapping copies beat a memcpy call.
        if n >= 8:
            if n <= 16:
                memcpy(dst, s, 8)
                memcpy(dst + n - 8, s + n - 8, 8)
            else:
                memcpy(dst, s, <size_t>n)
        elif n >= 4:
            memcpy(dst, s, 4)
            memcpy(dst + n - 4, s + n - 4, 4)
        else:
            while n > 0:
                n -= 1
                dst[n] = s[n]
        col.offsets[row + 1] = <int32_t>need
        col.valid[row >> 3] |= <uint8_t>(1 << (row & 7))
        return 0

    cdef int _grow_text(self, Column* col, size_t need) noexcept nogil:
        cdef size_t newcap = col.data_cap * 2
        cdef void* p
        if need > 2147483647:  # Arrow string offsets are int32
            self.too_big = 1
            return -1
        while newcap < need:
            newcap *= 2
        p = realloc(col.data, newcap)
        if p == NULL:
            return -1
        col.data = <unsigned char*>p
        col.data_cap = newcap
        return 0

    cdef inline void _put_null(self, Column* col) noexcept nogil:
        cdef Py_ssize_t row = self.nrows_
        if col.width == 0:
            col.offsets[row + 1] = col.offsets[row]
        else:
            memset(col.data + row * col.width, 0, col.width)
        col.valid[row >> 3] &= <uint8_t>~(1 << (row & 7))
        if col.naive != NULL:
            col.naive[row >> 3] &= <uint8_t>~(1 << (row & 7))

    cdef inline void _put_int(self, Column* col, int64_t v) noexcept nogil:
        cdef Py_ssize_t row = self.nrows_
        (<int64_t*>col.data)[row] = v
        col.valid[row >> 3] |= <uint8_t>(1 << (row & 7))

    cdef inline void _put_decimal(self, Column* col, int64_t cents) noexcept nogil:
        cdef Py_ssize_t row = self.nrows_
        cdef int64_t* dst = <int64_t*>(col.data + row * 16)
        dst[0] = cents
        dst[1] = -1 if cents < 0 else 0
        col.valid[row >> 3] |= <uint8_t>(1 << (row & 7))

    # -------------------------------------------------------------- one field

    cdef inline int _convert(self, Column* col, const unsigned char* s, Py_ssize_t n, int flags) noexcept nogil:
        """Write the field into row `nrows` of `col`; 0, a reject code, or -1 (no memory)."""
        cdef Py_ssize_t a, b, j, k
        cdef int code, kind = col.kind
        cdef int64_t v = 0
        cdef bint naive = False
        cdef bint match
        cdef unsigned char c, u
        cdef unsigned char up[3]
        cdef Py_ssize_t row
        if flags & F_NUL:
            return C_NUL_BYTE
        if flags & F_HIGH and not _utf8_valid(s, n):
            return C_INVALID_TEXT
        if kind == K_RAW:
            return self._put_text(col, s, n)
        if kind == K_STRING:
            if n == 0:
                if col.required:
                    return C_REQUIRED_EMPTY
                self._put_null(col)
                return 0
            if col.required:
                a = 0
                while a < n and (s[a] == 32 or s[a] == 9):
                    a += 1
                if a == n:
                    return C_REQUIRED_EMPTY
            return self._put_text(col, s, n)
        a = 0
        b = n
        while a < b and (s[a] == 32 or s[a] == 9):
            a += 1
        while b > a and (s[b - 1] == 32 or s[b - 1] == 9):
            b -= 1
        if a == b:
            if col.dflt != NULL:
                return self._put_text(col, col.dflt, col.dflt_len)
            if col.required:
                return C_REQUIRED_EMPTY
            self._put_null(col)
            return 0
        s = s + a
        n = b - a
        if kind == K_INTEGER:
            code = _parse_integer(s, n, &v)
            if code == 0:
                self._put_int(col, v)
            return code
        if kind == K_SECONDS:
            code = _parse_seconds(s, n, &v)
            if code == 0:
                self._put_int(col, v)
            return code
        if kind == K_TIMESTAMP:
            code = _parse_timestamp(s, n, &v, &naive)
            if code == 0:
                self._put_int(col, v)
                row = self.nrows_
                if naive:
                    col.naive[row >> 3] |= <uint8_t>(1 << (row & 7))
                else:
                    col.naive[row >> 3] &= <uint8_t>~(1 << (row & 7))
            return code
        if kind == K_DECIMAL:
            code = _parse_decimal(s, n, &v)
            if code == 0:
                self._put_decimal(col, v)
            return code
        if kind == K_ENUM:
            for j in range(col.nallowed):
                if col.allowed_len[j] != n:
                    continue
                match = True
                for k in range(n):
                    c = s[k]
                    u = c - 32 if 97 <= c <= 122 else c
                    if u != col.allowed_upper[j][k]:
                        match = False
                        break
                if match:
                    return self._put_text(col, col.allowed[j], n)
            return C_BAD_ENUM
        # COUNTRY / CURRENCY: ASCII letters only, upper-cased in ASCII.
        code = C_BAD_COUNTRY if kind == K_COUNTRY else C_BAD_CURRENCY
        if n != (2 if kind == K_COUNTRY else 3):
            return code
        for k in range(n):
            c = s[k]
            u = c - 32 if 97 <= c <= 122 else c
            if u < 65 or u > 90:
                return code
            up[k] = u
        if kind == K_COUNTRY:
            if not COUNTRY_TABLE[(up[0] - 65) * 26 + (up[1] - 65)]:
                return code
        elif not CURRENCY_TABLE[((up[0] - 65) * 26 + (up[1] - 65)) * 26 + (up[2] - 65)]:
            return code
        return self._put_text(col, up, n)

    # -------------------------------------------------------------- rejects (with the GIL)

    cdef void _reject(self, Py_ssize_t line, Py_ssize_t field, int code,
                      const unsigned char* s, Py_ssize_t n, Py_ssize_t extra) noexcept with gil:
        self.rejects.append((line, field, code, (<const char*>s)[:n], extra))

    cdef void _reject_key(self, Py_ssize_t line, Column* col) noexcept with gil:
        """Keep the key of a record rejected for other fields (written speculatively into
        row `nrows` of its text column), so the results file can name the record."""
        cdef Py_ssize_t row = self.nrows_
        cdef int32_t start = col.offsets[row]
        cdef int32_t end = col.offsets[row + 1]
        if col.valid[row >> 3] & (1 << (row & 7)):
            self.reject_keys[line] = (<const char*>col.data)[start:end]

    cdef const unsigned char* _unescape(self, const unsigned char* s, Py_ssize_t n,
                                        Py_ssize_t* out_n) noexcept nogil:
        cdef Py_ssize_t i = 0, j = 0
        cdef void* p
        if n > self.scratch_cap:
            p = realloc(self.scratch, n)
            if p == NULL:
                return NULL
            self.scratch = <unsigned char*>p
            self.scratch_cap = n
        while i < n:
            self.scratch[j] = s[i]
            j += 1
            i += 2 if s[i] == QUOTE and i + 1 < n and s[i + 1] == QUOTE else 1
        out_n[0] = j
        return self.scratch

    # -------------------------------------------------------------- the loop

    cdef Py_ssize_t _run(self, const unsigned char* p, Py_ssize_t n, bint final) noexcept nogil:
        """Consume every complete record of p[:n]; return where the unconsumed tail starts,
        or -1 when memory ran out."""
        cdef Py_ssize_t pos = 0, i, vn
        cdef Record rec
        cdef int status, code, slot
        cdef bint bad, key_ok
        cdef Field* f
        cdef Column* col
        cdef const unsigned char* v
        while True:
            status = _next_record(&self.sc, p, n, pos, self.line, final,
                                  &self.fields, &self.fcap, &rec)
            if status == TOK_OOM:
                self.oom = 1
                return -1
            if status == TOK_END:
                self.line = rec.next_line
                return rec.next
            if status == TOK_INCOMPLETE:
                self.line = rec.line
                return rec.start
            pos = rec.next
            self.line = rec.next_line
            if rec.error:
                f = &self.fields[rec.error_field]
                v = p + f.start
                vn = f.end - f.start
                if f.flags & F_ESC:
                    v = self._unescape(v, vn, &vn)
                    if v == NULL:
                        self.oom = 1
                        return -1
                self._reject(rec.line, rec.error_field, rec.error, v, vn, 0)
                continue
            if rec.nfields != self.ncols_file:
                self._reject(rec.line, -1, C_FIELD_COUNT, p + rec.start, rec.end - rec.start,
                             rec.nfields)
                continue
            if self.nrows_ == self.cap and self._grow_rows() != 0:
                self.oom = 1
                return -1
            bad = False
            key_ok = False
            for i in range(rec.nfields):
                slot = self.field_slot[i]
                if slot < 0:
                    continue
                f = &self.fields[i]
                v = p + f.start
                vn = f.end - f.start
                if f.flags & F_ESC:
                    v = self._unescape(v, vn, &vn)
                    if v == NULL:
                        self.oom = 1
                        return -1
                col = &self.cols[slot]
                if col.kind == K_STRING and f.flags & (F_NUL | F_HIGH) == 0 and not col.required:
                    # The most common field by far: optional plain text. Inline, no call.
                    if vn == 0:
                        self._put_null(col)
                        continue
                    code = self._put_text(col, v, vn)
                else:
                    code = self._convert(col, v, vn, f.flags)
                if code == 0:
                    if slot == self.key_slot:
                        key_ok = True
                    continue
                if code < 0:
                    self.oom = 1
                    return -1
                self._reject(rec.line, i, code, v, vn, 0)
                bad = True
            if not bad:
                self.lines[self.nrows_] = rec.line
                self.nrows_ += 1
            elif key_ok:
                self._reject_key(rec.line, &self.cols[self.key_slot])

    def feed(self, data, bint final):
        """Parse every complete record in the carried-over bytes plus `data`."""
        cdef const unsigned char[::1] view
        cdef Py_ssize_t consumed, n
        if self.finished:
            raise RuntimeError("feed() after the final chunk")
        if len(self.pending):
            self.pending += data
            if not final and len(self.pending) < self.rescan_at:
                return
            buf = self.pending
            self.pending = bytearray()
        else:
            buf = data
        n = len(buf)
        if n == 0:
            view = b"\0"
        else:
            view = buf
        with nogil:
            consumed = self._run(&view[0], n, final)
        if consumed < 0:
            if self.too_big:
                from connectbatch.errors import ParseError
                raise ParseError("a column holds more than 2 GiB of text; split the file")
            raise MemoryError()
        if consumed < n:
            self.pending = bytearray(buf[consumed:])
            self.rescan_at = 2 * len(self.pending)
        if final:
            self.finished = True

    def finish(self):
        """Hand the columns to Arrow (no copy) and return a CoreOutput."""
        cdef int i
        cdef Column* col
        cdef Py_ssize_t n = self.nrows_
        cdef Py_ssize_t bitmap = (n + 7) // 8
        if not self.finished:
            self.feed(b"", True)
        arrays = []
        naive = {}
        for i, slot in enumerate(self.plan.slots):
            col = &self.cols[i]
            typ = _ARROW_TYPES[col.kind]
            valid = _to_arrow_buffer(<void**>&col.valid, bitmap)
            if col.width:
                data = _to_arrow_buffer(<void**>&col.data, n * col.width)
                arrays.append(pa.Array.from_buffers(typ, n, [valid, data]))
            else:
                offsets = _to_arrow_buffer(<void**>&col.offsets, (n + 1) * sizeof(int32_t))
                data = _to_arrow_buffer(<void**>&col.data, col.data_cap)
                arrays.append(pa.Array.from_buffers(typ, n, [valid, offsets, data]))
            if col.naive != NULL:
                bits = _to_arrow_buffer(<void**>&col.naive, bitmap)
                naive[i] = pa.Array.from_buffers(pa.bool_(), n, [None, bits])
        lines = pa.Array.from_buffers(pa.int64(), n, [None, _to_arrow_buffer(<void**>&self.lines, n * 8)])
        return CoreOutput(arrays, lines, self.rejects, naive, self.reject_keys)


_ARROW_TYPES = {
    K_STRING: pa.string(),
    K_RAW: pa.string(),
    K_INTEGER: pa.int64(),
    K_SECONDS: pa.int64(),
    K_DECIMAL: pa.decimal128(18, 2),
    K_TIMESTAMP: pa.timestamp("us", tz="UTC"),
    K_ENUM: pa.string(),
    K_COUNTRY: pa.string(),
    K_CURRENCY: pa.string(),
}


def read_header(data, int delimiter, bint final):
    """(status, fields, header line, end offset, next line) for the first record."""
    cdef Scanner sc
    cdef Record rec
    cdef Py_ssize_t fcap = 64, i, n = len(data), vn
    cdef Field* fields = <Field*>malloc(fcap * sizeof(Field))
    cdef const unsigned char[::1] view
    cdef int status
    if fields == NULL:
        raise MemoryError()
    try:
        _init_scanner(&sc, delimiter)
        view = data if n else b"\0"
        status = _next_record(&sc, &view[0], n, 0, 1, final, &fields, &fcap, &rec)
        if status == TOK_OOM:
            raise MemoryError()
        if status == TOK_INCOMPLETE:
            return HEADER_INCOMPLETE, [], 0, 0, 0
        if status == TOK_END:
            return (HEADER_EMPTY if final else HEADER_INCOMPLETE), [], 0, 0, 0
        if rec.error:
            return (HEADER_UNTERMINATED if rec.error == C_UNTERMINATED else HEADER_JUNK), [], rec.line, 0, 0
        out = []
        for i in range(rec.nfields):
            value = bytes(data[fields[i].start:fields[i].end])
            if fields[i].flags & F_ESC:
                value = value.replace(b'""', b'"')
            out.append(value)
        return HEADER_OK, out, rec.line, rec.next, rec.next_line
    finally:
        free(fields)
