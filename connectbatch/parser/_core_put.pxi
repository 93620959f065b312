# Writing one field's value into row `nrows` of a column of the Parser (_core_parser.pxi):
# the text copy, the typed puts, and `_convert`, which checks and converts a field by its
# column's kind (the converters are _core_values.pxi's); and `_key_before`, the key of a
# record refused for its quoting, read the same way. Part of the `connectbatch._csvcore`
# C unit (included by _csvcore.pyx after the Parser): module-level functions of a final
# class's instance are direct C calls, inlined like its methods were.

cdef inline int _put_text(Parser self, Column* col, const unsigned char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t row = self.nrows_
    cdef size_t used = <size_t>col.offsets[row]
    cdef size_t need = used + <size_t>n
    cdef unsigned char* dst
    if need > col.data_cap and _grow_text(self, col, need) != 0:
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

cdef int _grow_text(Parser self, Column* col, size_t need) noexcept nogil:
    cdef size_t newcap = col.data_cap * 2
    cdef size_t guess = self._estimate(need, col.data_cap)
    cdef void* p = NULL
    if need > 2147483647:  # Arrow string offsets are int32
        self.too_big = 1
        return -1
    while newcap < need:
        newcap *= 2
    if guess > newcap:
        p = realloc(col.data, guess)
        if p != NULL:
            newcap = guess
    if p == NULL:
        p = realloc(col.data, newcap)
    if p == NULL:
        return -1
    col.data = <unsigned char*>p
    col.data_cap = newcap
    cb_huge_pages(p)
    return 0

cdef inline bint _is_enum_gap(unsigned char c) noexcept nogil:
    return c == 95 or c == 45 or c == 32  # _ - space


cdef bint _same_enum(const unsigned char* s, Py_ssize_t n, const unsigned char* want,
                     Py_ssize_t m) noexcept nogil:
    """Whether `s` is the allowed value `want` (upper case) in any case, its words joined
    or not by `_`, `-` or spaces (refvalues.enum_form): "in_stock" and "In Stock" are
    InStock, as Google Merchant Center feeds write it (data-types audit)."""
    cdef Py_ssize_t i = 0, j = 0
    cdef unsigned char c
    while True:
        while i < n and _is_enum_gap(s[i]):
            i += 1
        while j < m and _is_enum_gap(want[j]):
            j += 1
        if i == n or j == m:
            return i == n and j == m
        c = s[i]
        if 97 <= c <= 122:
            c -= 32
        if c != want[j]:
            return False
        i += 1
        j += 1


cdef inline void _put_null(Parser self, Column* col) noexcept nogil:
    cdef Py_ssize_t row = self.nrows_
    if col.width == 0:
        col.offsets[row + 1] = col.offsets[row]
    else:
        memset(col.data + row * col.width, 0, col.width)
    col.valid[row >> 3] &= <uint8_t>~(1 << (row & 7))
    if col.naive != NULL:
        col.naive[row >> 3] &= <uint8_t>~(1 << (row & 7))

cdef inline void _put_int(Parser self, Column* col, int64_t v) noexcept nogil:
    cdef Py_ssize_t row = self.nrows_
    (<int64_t*>col.data)[row] = v
    col.valid[row >> 3] |= <uint8_t>(1 << (row & 7))

cdef inline void _put_decimal(Parser self, Column* col, int64_t cents) noexcept nogil:
    cdef Py_ssize_t row = self.nrows_
    cdef int64_t* dst = <int64_t*>(col.data + row * 16)
    dst[0] = cents
    dst[1] = -1 if cents < 0 else 0
    col.valid[row >> 3] |= <uint8_t>(1 << (row & 7))

# -------------------------------------------------------------- one field

cdef inline int _convert(Parser self, Column* col, const unsigned char* s, Py_ssize_t n, int flags) noexcept nogil:
    """Write the field into row `nrows` of `col`; 0, a reject code, or -1 (no memory)."""
    cdef Py_ssize_t a, b, j, k
    cdef int code, kind = col.kind
    cdef int64_t v = 0
    cdef bint naive = False
    cdef unsigned char c, u
    cdef unsigned char up[3]
    cdef Py_ssize_t row
    if flags & F_NUL:
        return C_NUL_BYTE
    if flags & F_HIGH and not _utf8_valid(s, n):
        return C_INVALID_TEXT
    if kind == K_RAW:
        return _put_text(self, col, s, n)
    # Every typed value is trimmed, text too (refcore.convert says why).
    a = _pad_before(s, n)
    b = _pad_after(s, a, n)
    # The word NULL is an empty cell, as a database export writes one ("When NULL, defaults
    # to US"), except in the column whose empty cell a status excuses (CallerId), where it
    # stays what the partner sent (refcore.convert).
    if a == b or (b - a == 4 and _is_null_word(s + a)
                  and not (self.excused_slot >= 0 and col == self.cols + self.excused_slot)):
        if col.dflt != NULL:
            return _put_text(self, col, col.dflt, col.dflt_len)
        if col.required:
            return C_REQUIRED_EMPTY
        _put_null(self, col)
        return 0
    s = s + a
    n = b - a
    if col.dflt != NULL and n == 4 and _is_null_word(s):  # "When NULL, defaults to US"
        return _put_text(self, col, col.dflt, col.dflt_len)  # a required text column's too
    if kind == K_STRING:
        return _put_text(self, col, s, n)
    if kind == K_INTEGER:
        code = _parse_integer(s, n, &v)
        if code == 0:
            if v < 0 and col.non_negative:
                return C_NEGATIVE
            _put_int(self, col, v)
        return code
    if kind == K_SECONDS:
        code = _parse_seconds(s, n, &v)
        if code == 0:
            _put_int(self, col, v)
        return code
    if kind == K_TIMESTAMP:
        code = _parse_timestamp(s, n, &v, &naive)
        if code == 0:
            _put_int(self, col, v)
            row = self.nrows_
            if naive:
                col.naive[row >> 3] |= <uint8_t>(1 << (row & 7))
            else:
                col.naive[row >> 3] &= <uint8_t>~(1 << (row & 7))
        return code
    if kind == K_DECIMAL:
        code = _parse_decimal(s, n, &v)
        if code == 0:
            _put_decimal(self, col, v)
        return code
    if kind == K_ENUM:
        for j in range(col.nallowed):
            if _same_enum(s, n, col.allowed_upper[j], col.allowed_len[j]):
                return _put_text(self, col, col.allowed[j], col.allowed_len[j])
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
    return _put_text(self, col, up, n)


# ------------------------------------------------------------------ a refused record's key

cdef int _key_before(Parser self, const unsigned char* p, Record* rec) noexcept nogil:
    """The key and qualifier of a record refused for its quoting, each whose field comes
    before the one at fault (the fields up to it were cut right), read as a good record's
    would be, into the row being written (which the record never becomes): the results
    file names the record (audit: a stray quote after the key left its line nameless).
    -1 when memory ran out (refcore._key_before)."""
    cdef int key, qualifier
    if self.key_field < 0 and self.qualifier_field < 0:
        return 0
    if self.nrows_ == self.cap and self._grow_rows() != 0:
        return -1
    key = _read_field(self, p, self.key_field, rec.error_field)
    qualifier = _read_field(self, p, self.qualifier_field, rec.error_field)
    if key < 0 or qualifier < 0:
        return -1
    if key or qualifier:
        self._reject_key(rec.line, key == 1, qualifier == 1)
    return 0

cdef int _read_field(Parser self, const unsigned char* p, Py_ssize_t i, Py_ssize_t before) noexcept nogil:
    """1 when field `i` of the record in hand (-1: none; only one before `before`) converts
    into its column's row being written, 0 when not, -1 when memory ran out."""
    cdef Field* f
    cdef const unsigned char* v
    cdef Py_ssize_t vn
    cdef int code
    if i < 0 or i >= before:
        return 0
    f = &self.fields[i]
    v = p + f.start
    vn = f.end - f.start
    if f.flags & F_ESC:
        v = self._unescape(v, vn, &vn)
        if v == NULL:
            return -1
    code = _convert(self, &self.cols[self.field_slot[i]], v, vn, f.flags)
    if code < 0:
        return -1
    return 1 if code == 0 else 0
