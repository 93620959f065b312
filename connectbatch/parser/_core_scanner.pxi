# The tokenizer, part of the `connectbatch._csvcore` C unit (included by _csvcore.pyx).
#
# Owns: byte classes (`Scanner`), the eight-bytes-at-a-time plain-field skip, `_next_record`
# (bytes -> field spans of one record, physical lines counted, structural errors flagged),
# `_blank_record` (a record of only delimiters and blanks, skipped) and `read_header`. It knows records and lines, nothing about types: the converters in
# _core_values.pxi do that, as pandas keeps its tokenizer apart from typed conversion.
# Nothing here raises inside the loop; it returns TOK_* status codes declared in _csvcore.pxd.


cdef int _check_delimiter(int delim) except -1:
    """The byte tables are indexed by the delimiter: refuse anything that is not one ASCII
    byte the tokenizer can stop at (plan.check_delimiter words this for people)."""
    if delim <= 0 or delim >= 128 or delim == CR or delim == LF or delim == QUOTE:
        raise ValueError(f"delimiter must be an ASCII byte other than CR, LF or a quote, not {delim}")
    return 0


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


cdef extern from *:
    """
    /* Stop marks of 64 bytes at once, one bit a byte (bit i for p[i]): the delimiter and
       every byte below 0x20 or above 0x7F (CR, LF, NUL, non-ASCII, and false alarms such
       as a tab that the caller skips). SSE2 is part of x86-64, so this needs no
       -march flag; elsewhere the byte loop gives the same marks. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #define CB_SIMD 1
    static inline unsigned long long cb_stop_mask64(const unsigned char* p, int delim) {
        const __m128i d = _mm_set1_epi8((char)delim);
        const __m128i lo = _mm_set1_epi8(0x20);  /* signed: also every byte >= 0x80 */
        unsigned long long m = 0;
        int k;
        for (k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i*)(p + 16 * k));
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmplt_epi8(v, lo));
            m |= (unsigned long long)(unsigned int)_mm_movemask_epi8(hit) << (16 * k);
        }
        return m;
    }
    #else
    #define CB_SIMD 0
    static inline unsigned long long cb_stop_mask64(const unsigned char* p, int delim) {
        return 0;
    }
    #endif
    static inline unsigned long long cb_stop_mask64_scalar(const unsigned char* p, int delim) {
        unsigned long long m = 0;
        int i;
        for (i = 0; i < 64; i++) {
            if (p[i] == delim || p[i] < 0x20 || p[i] >= 0x80) m |= 1ULL << i;
        }
        return m;
    }
    #if CB_SIMD
    #define cb_mask64 cb_stop_mask64
    #else
    #define cb_mask64 cb_stop_mask64_scalar
    #endif
    #if defined(__GNUC__)
    static inline int cb_lowest(unsigned long long x) { return __builtin_ctzll(x); }
    #else
    static inline int cb_lowest(unsigned long long x) { int i = 0; while (!(x & 1)) { x >>= 1; i++; } return i; }
    #endif
    """
    const int CB_SIMD
    uint64_t cb_stop_mask64(const unsigned char* p, int delim) noexcept nogil
    uint64_t cb_stop_mask64_scalar(const unsigned char* p, int delim) noexcept nogil
    uint64_t cb_mask64(const unsigned char* p, int delim) noexcept nogil
    int cb_lowest(uint64_t x) noexcept nogil


def stop_masks(data, int delimiter):
    """(SIMD marks or None where there is no SIMD, byte-loop marks) of the first 64 bytes
    of `data`: lets a test hold the two implementations of the tokenizer's fast path to
    each other on the machine it runs on."""
    cdef const unsigned char[::1] view = data
    if len(data) < 64:
        raise ValueError("stop_masks needs 64 bytes")
    scalar = cb_stop_mask64_scalar(&view[0], delimiter)
    return (cb_stop_mask64(&view[0], delimiter) if CB_SIMD else None), scalar


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
    cdef Py_ssize_t nf, fstart, base, q
    cdef uint64_t m
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
        if pos + 64 <= n and p[pos] != QUOTE:
            # Fast path: plain fields that end in a delimiter, found through the stop marks
            # of 64 bytes at a time (a few instructions a field instead of a scan of each).
            # Anything else (a quoted field, the record's end) stops it at the start of the
            # field in hand, which the general code below then reads from its first byte.
            base = pos
            fstart = pos
            flags = 0
            m = cb_mask64(p + base, delim)
            while True:
                if m == 0:
                    base += 64
                    if base + 64 > n:
                        break
                    m = cb_mask64(p + base, delim)
                    continue
                q = base + cb_lowest(m)
                m &= m - 1
                c = p[q]
                if c == delim:
                    if nf == fcap[0]:
                        grown = <Field*>realloc(fields[0], <size_t>(fcap[0] * 2) * sizeof(Field))
                        if grown == NULL:
                            return TOK_OOM
                        fields[0] = grown
                        fcap[0] *= 2
                    f = &fields[0][nf]
                    f.start = fstart
                    f.end = q
                    f.flags = flags
                    nf += 1
                    fstart = q + 1
                    flags = 0
                    if fstart < n and p[fstart] == QUOTE:
                        break
                elif c == LF or c == CR:
                    break
                elif c == 0:
                    flags |= F_NUL
                elif c >= 128:
                    flags |= F_HIGH
            pos = fstart
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
                        rec.error = C_UNTERMINATED_QUOTE
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
                    flags |= F_BREAK
                elif c == CR:
                    if pos + 1 < n:
                        if p[pos + 1] != LF:
                            line += 1
                    elif not final:
                        return TOK_INCOMPLETE
                    else:
                        line += 1
                    pos += 1
                    flags |= F_BREAK
                else:
                    flags |= F_NUL if c == 0 else F_HIGH
                    pos += 1
            if pos < n and sc.ucls[p[pos]] != 1:
                # Text after the closing quote: keep the field's raw bytes as its value.
                if rec.error == 0:
                    rec.error = C_JUNK_AFTER_QUOTE
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



def read_header(data, int delimiter, bint final):
    """(status, fields, header line, end offset, next line) for the first record."""
    cdef Scanner sc
    cdef Record rec
    cdef Py_ssize_t fcap = 64, i, n = len(data), vn
    cdef Field* fields
    cdef const unsigned char[::1] view
    cdef int status
    _check_delimiter(delimiter)
    fields = <Field*>malloc(fcap * sizeof(Field))
    if fields == NULL:
        raise MemoryError()
    try:
        _init_scanner(&sc, delimiter)
        view = data if n else b"\0"
        status = _next_record(&sc, &view[0], n, 0, 1, final, &fields, &fcap, &rec)
        if status == TOK_OOM:
            raise MemoryError()
        if status == TOK_INCOMPLETE:
            return H_INCOMPLETE, [], 0, 0, 0
        if status == TOK_END:
            return (H_EMPTY if final else H_INCOMPLETE), [], 0, 0, 0
        if rec.error:
            return (H_UNTERMINATED if rec.error == C_UNTERMINATED_QUOTE else H_JUNK), [], rec.line, 0, 0
        out = []
        for i in range(rec.nfields):
            value = bytes(data[fields[i].start:fields[i].end])
            if fields[i].flags & F_ESC:
                value = value.replace(b'""', b'"')
            out.append(value)
        return H_OK, out, rec.line, rec.next, rec.next_line
    finally:
        free(fields)


cdef inline bint _blank_record(const unsigned char* s, Py_ssize_t n, int delim) noexcept nogil:
    """Whether the n bytes at s are all the delimiter, spaces or tabs: a spreadsheet's empty
    row (",,,,", which Excel writes for a row that only had formatting) or a line of only
    spaces or tabs (a hand-edited file's trailing line). Skipped like a blank line rather
    than rejected field by field (ten reasons a row, counted against the reject limit: three
    good rows and five empty ones quarantined a file). refcore.blank_record is the rule."""
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] != delim and s[i] != SPACE and s[i] != TAB:
            return False
    return True
