# The Parser class, part of the `connectbatch._csvcore` C unit (included by _csvcore.pyx).
#
# Owns: the record loop (`_run`, without the GIL), the growth of the row buffers, recording
# rejects (with the GIL), streaming `feed()` and `finish()`. It uses the tokenizer
# (_core_scanner.pxi), the puts of one value into a column (_core_put.pxi), the converters
# (_core_values.pxi), the column buffers (_core_buffers.pxi) and the record's key fields
# (_core_keys.pxi); being one C unit with them, the compiler inlines across files.


cdef enum:
    FIXED_INITIAL_ROWS = 1024
    # Growth follows the expected input size (Parser's `expect_bytes`) once this much of it
    # is parsed: a smaller sample says too little about the rows to come.
    ESTIMATE_AFTER_BYTES = 1 << 20
    # At most this many times the old capacity in one growth, whatever the estimate says.
    MAX_GROWTH = 16


@cython.final
cdef class Parser:
    """Feed UTF-8 chunks; `finish()` returns a csvplan.CoreOutput."""

    cdef Scanner sc
    cdef Column* cols
    cdef int ncols_out
    cdef Py_ssize_t ncols_file
    cdef bint short_ok  # plan.last_column_unnamed: a record one field short fits
    cdef bint extra_ok  # plan.extra_empty_ok: a record with one empty field too many fits
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
    cdef bint handed_over  # finish() gave the buffers to Arrow
    cdef Py_ssize_t expect  # bytes this parser expects to be fed in all; 0: not known
    cdef Py_ssize_t done    # bytes consumed by the record loop before the buffer in hand
    cdef Py_ssize_t at      # bytes consumed up to the record in hand
    cdef list rejects
    cdef dict reject_keys
    cdef list broken  # (line, field) of text fields holding a line break (CoreOutput.broken)
    cdef int key_slot
    cdef int qualifier_slot
    cdef Py_ssize_t key_field  # the file's field of key_slot, or -1
    cdef Py_ssize_t qualifier_field  # of qualifier_slot, or -1
    # plan.Slot.empty_when: the slot whose empty required cell may be excused (CallerId), or
    # -1; the text slot whose value excuses it (CallStatus) and that value (UNKNOWN_CALLERID)
    cdef int excused_slot
    cdef int excuse_slot
    cdef const unsigned char* excuse_value
    cdef Py_ssize_t excuse_len
    cdef list keep  # Python objects whose bytes the Column structs point into
    cdef object plan

    def __cinit__(self, plan, Py_ssize_t first_line, Py_ssize_t expect_bytes=0):
        # Cython zeroes the object, so every pointer __dealloc__ frees starts NULL; the arrays
        # are calloc'd and `ncols_out` (how many columns __dealloc__ walks) is only set once
        # `cols` exists and is zeroed, so any exception below leaves nothing half-made to free.
        cdef Py_ssize_t i, nfile = len(plan.field_slot), nout = len(plan.slots)
        cdef int slot_index
        _check_delimiter(plan.delimiter)
        self.plan = plan
        self.keep = []
        self.rejects = []
        self.reject_keys = {}
        self.broken = []
        self.pending = bytearray()
        self.line = first_line
        self.expect = max(0, expect_bytes)
        # Room for one field past the header's: a record one short gets an empty last field.
        self.fcap = max(64, nfile + 1)
        self.scratch_cap = 4096
        self.cap = FIXED_INITIAL_ROWS
        self.cols = <Column*>calloc(max(1, nout), sizeof(Column))
        self.field_slot = <int*>calloc(max(1, nfile), sizeof(int))
        self.fields = <Field*>calloc(self.fcap, sizeof(Field))
        self.scratch = <unsigned char*>malloc(self.scratch_cap)
        self.lines = <int64_t*>malloc(self.cap * sizeof(int64_t))
        if not (self.field_slot and self.cols and self.fields and self.scratch and self.lines):
            raise MemoryError()
        self.ncols_out = <int>nout
        self.ncols_file = nfile
        _init_scanner(&self.sc, plan.delimiter)
        for i in range(nfile):
            slot_index = plan.field_slot[i]
            if slot_index < -1 or slot_index >= nout:  # _run indexes `cols` with it unchecked
                raise ValueError(f"field {i} maps to slot {slot_index}, not one of {nout}")
            self.field_slot[i] = slot_index
        for i, slot in enumerate(plan.slots):
            _column_init(&self.cols[i], slot, self.keep, self.cap)
        _plan_keys(self, plan, nfile, nout)
        self.short_ok = bool(plan.last_column_unnamed)
        self.extra_ok = bool(plan.extra_empty_ok)

    def __dealloc__(self):
        cdef int i
        if self.cols != NULL:
            for i in range(self.ncols_out):
                _column_free(&self.cols[i])
            free(self.cols)
        free(self.field_slot)
        free(self.fields)
        free(self.scratch)
        free(self.lines)

    @property
    def rows(self):
        return self.nrows_

    # -------------------------------------------------------------- blocks (threaded parse)

    @property
    def next_line(self):
        """The physical line the next record starts on."""
        return self.line

    @property
    def pending_bytes(self):
        """Bytes of an incomplete last record carried over to the next feed(): 0 after a
        block means the block ended exactly on a record boundary."""
        return len(self.pending)

    def begin_block(self, Py_ssize_t line):
        """Count lines from `line` for the next block: a threaded parse gives each block to
        one of several parsers before it knows the line the block starts on, so blocks are
        counted from 0 and renumbered once the blocks before them are done."""
        if len(self.pending):
            raise RuntimeError("begin_block() with an incomplete record carried over")
        self.line = line

    def take_rejects(self):
        """(rejects, reject keys) recorded since the last call, handed over and cleared, so
        each block's rejects can be renumbered on their own."""
        out = (self.rejects, self.reject_keys, self.broken)
        self.rejects = []
        self.reject_keys = {}
        self.broken = []
        return out

    # -------------------------------------------------------------- growth

    cdef inline size_t _estimate(self, size_t now, size_t cap) noexcept nogil:
        """The capacity to grow to from `cap` for a quantity that is `now` (rows, or text
        bytes of one column) so far: twice as much, or, when the expected input size is known,
        what `now` will be at its end (scaled by the share parsed so far, 1/8 to spare), up to
        MAX_GROWTH times `cap`. Every growth of a big buffer moves it (mremap: its page
        tables, and in a threaded parse a TLB flush on the other cores): on the 1M-row bench
        file, doubling ~100 buffers ten times cost up to ~25 ms of CPU on one thread and ~70 ms
        on two (against buffers that never grow); the estimate leaves about a quarter of the
        moves."""
        cdef size_t grown = cap * 2
        cdef double share
        if self.expect > self.at and self.at >= ESTIMATE_AFTER_BYTES:
            share = <double>self.expect / <double>self.at
            if <double>now * share * 1.125 > <double>(cap * MAX_GROWTH):
                return cap * MAX_GROWTH
            if <size_t>(<double>now * share * 1.125) > grown:
                return <size_t>(<double>now * share * 1.125)
        return grown

    cdef int _grow_rows(self) noexcept nogil:
        """Room for more rows in every column; -1 when memory ran out."""
        cdef Py_ssize_t newcap = <Py_ssize_t>self._estimate(<size_t>self.nrows_, <size_t>self.cap)
        if newcap > self.cap * 2 and self._grow_rows_to(newcap) == 0:
            return 0
        return self._grow_rows_to(self.cap * 2)  # no estimate, or no room for it

    cdef int _grow_rows_to(self, Py_ssize_t newcap) noexcept nogil:
        cdef int i
        cdef Column* col
        cdef void* p
        p = realloc(self.lines, newcap * sizeof(int64_t))
        if p == NULL:
            return -1
        self.lines = <int64_t*>p
        cb_huge_pages(p)
        for i in range(self.ncols_out):
            col = &self.cols[i]
            if col.width:
                p = realloc(col.data, newcap * col.width)
                if p == NULL:
                    return -1
                col.data = <unsigned char*>p
                col.data_cap = newcap * col.width
                cb_huge_pages(p)
            else:
                p = realloc(col.offsets, (newcap + 1) * sizeof(int32_t))
                if p == NULL:
                    return -1
                col.offsets = <int32_t*>p
                cb_huge_pages(p)
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

    # -------------------------------------------------------------- rejects (with the GIL)

    cdef void _reject(self, Py_ssize_t line, Py_ssize_t field, int code,
                      const unsigned char* s, Py_ssize_t n, Py_ssize_t extra) noexcept with gil:
        self.rejects.append((line, field, code, (<const char*>s)[:n], extra))

    cdef void _broke(self, Py_ssize_t line, Py_ssize_t field) noexcept with gil:
        self.broken.append((line, field))

    cdef void _reject_key(self, Py_ssize_t line, bint key_ok, bint qualifier_ok) noexcept with gil:
        """Keep the key and its qualifier (VendorEventId) of a record rejected for other
        fields, each that was read fine, so the results file can name the record and event."""
        key = self._written(&self.cols[self.key_slot]) if key_ok else None
        qualifier = None
        if qualifier_ok and self.qualifier_slot >= 0:
            qualifier = self._written(&self.cols[self.qualifier_slot])
        if key is not None or qualifier is not None:
            self.reject_keys[line] = (key, qualifier)

    cdef void _reject_in_order(self, Py_ssize_t line, Py_ssize_t field, int code,
                               const unsigned char* s, Py_ssize_t n) noexcept with gil:
        """Record a reject decided at the end of its record (an empty cell that was not
        excused) where _reject would have put it: before the record's rejects of later
        fields, as the reference core, which decides in field order, lists them."""
        cdef Py_ssize_t k = len(self.rejects)
        while k > 0:
            earlier = self.rejects[k - 1]
            if earlier[0] != line or earlier[1] < field:
                break
            k -= 1
        self.rejects.insert(k, (line, field, code, (<const char*>s)[:n], 0))

    cdef object _written(self, Column* col):
        """The value written speculatively into row `nrows` of a text column, or None."""
        cdef Py_ssize_t row = self.nrows_
        cdef int32_t start = col.offsets[row]
        cdef int32_t end = col.offsets[row + 1]
        if col.valid[row >> 3] & (1 << (row & 7)):
            return (<const char*>col.data)[start:end]
        return None

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

    cdef inline bint _fit(self, const Record* rec) noexcept nogil:
        """Whether a record whose field count differs from the header's fits anyway, as
        refcore._fit decides (one empty field too many at the end, or one too few when the
        header's last field has no name); the one too few is then made an empty field past
        the record's last (`fcap` leaves room for it)."""
        cdef Field* f
        if rec.nfields == self.ncols_file + 1 and self.extra_ok:
            f = &self.fields[self.ncols_file]
            return f.end == f.start
        if rec.nfields == self.ncols_file - 1 and self.short_ok:
            f = &self.fields[rec.nfields]
            f.start = rec.end
            f.end = rec.end
            f.flags = 0
            return True
        return False

    cdef Py_ssize_t _run(self, const unsigned char* p, Py_ssize_t n, bint final) noexcept nogil:
        """Consume every complete record of p[:n]; return where the unconsumed tail starts,
        or -1 when memory ran out."""
        cdef Py_ssize_t pos = 0, i, vn, deferred
        cdef Record rec
        cdef int status, code, slot
        cdef bint bad, key_ok, qualifier_ok, excuse_bad
        cdef Field* f
        cdef Column* col
        cdef const unsigned char* v
        cdef unsigned char c
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
            self.at = self.done + pos
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
                if _key_before(self, p, &rec) < 0:
                    self.oom = 1
                    return -1
                continue
            c = p[rec.start]
            if (c == self.sc.delim or c == SPACE or c == TAB) and _blank_record(
                    p + rec.start, rec.end - rec.start, self.sc.delim):
                continue  # nothing but delimiters and blanks (a spreadsheet's empty row): a blank line
            if p[rec.start] == DOS_EOF and rec.end - rec.start == 1:
                continue  # a DOS end-of-file mark (refcore.DOS_EOF): a blank line too
            if rec.nfields != self.ncols_file and not self._fit(&rec):
                self._reject(rec.line, -1, C_FIELD_COUNT, p + rec.start, rec.end - rec.start,
                             rec.nfields)
                continue
            if self.nrows_ == self.cap and self._grow_rows() != 0:
                self.oom = 1
                return -1
            bad = False
            key_ok = False
            qualifier_ok = True  # unless its own field is rejected (empty: not written, None)
            deferred = -1  # the field of an empty cell the excusing one may excuse
            excuse_bad = False
            for i in range(self.ncols_file):
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
                if f.flags & F_BREAK and (col.kind == K_STRING or col.kind == K_RAW):
                    self._broke(rec.line, i)  # rare: the GIL for it
                if col.kind == K_STRING and f.flags & (F_NUL | F_HIGH) == 0 and (
                        vn == 0 and not col.required or vn > 0 and v[0] > 32 and v[vn - 1] > 32
                        and (vn != 4 or not _is_null_word(v))):
                    # The most common field by far: ASCII text that needs no trimming (first and
                    # last byte past the space, so no padding to cut) and is not the word NULL,
                    # or an optional empty one. Inline, no call; anything else is _convert's.
                    if vn == 0:
                        _put_null(self, col)
                        continue
                    code = _put_text(self, col, v, vn)
                else:
                    code = _convert(self, col, v, vn, f.flags)
                if code == 0:
                    if slot == self.key_slot:
                        key_ok = True
                    continue
                if code < 0:
                    self.oom = 1
                    return -1
                if code == C_REQUIRED_EMPTY and slot == self.excused_slot:
                    # An empty CallerId: decided once the record's CallStatus is read too,
                    # which may come later in the record (refcore._excused). Null till then.
                    _put_null(self, col)
                    deferred = i
                    continue
                self._reject(rec.line, i, code, v, vn, 0)
                bad = True
                if slot == self.qualifier_slot:
                    qualifier_ok = False
                if slot == self.excuse_slot:
                    excuse_bad = True
            if deferred >= 0 and (excuse_bad or not _excused(self)):
                f = &self.fields[deferred]
                v = p + f.start
                vn = f.end - f.start
                if f.flags & F_ESC:  # never for an empty cell (it holds a quote), but alike
                    v = self._unescape(v, vn, &vn)
                    if v == NULL:
                        self.oom = 1
                        return -1
                self._reject_in_order(rec.line, deferred, C_REQUIRED_EMPTY, v, vn)
                bad = True
                if self.excused_slot == self.qualifier_slot:
                    qualifier_ok = False
            if not bad:
                self.lines[self.nrows_] = rec.line
                self.nrows_ += 1
            elif key_ok or self.qualifier_slot >= 0:
                self._reject_key(rec.line, key_ok, qualifier_ok)

    cdef Py_ssize_t _consume(self, buf, bint final) except -1:
        """Parse every complete record of `buf`; return how many bytes that consumed."""
        cdef const unsigned char[::1] view
        cdef Py_ssize_t consumed, n = len(buf)
        view = buf if n else b"\0"
        with nogil:
            consumed = self._run(&view[0], n, final)
        if consumed > 0:
            self.done += consumed
        if consumed < 0:
            if self.too_big:
                from connectbatch.errors import ParseError
                raise ParseError("a column holds more than 2 GiB of text; split the file")
            raise MemoryError()
        return consumed

    def feed(self, data, bint final):
        """Parse every complete record in the carried-over bytes plus `data`."""
        cdef Py_ssize_t carried, k, consumed, off = 0, n = len(data)
        if self.finished:
            raise RuntimeError("feed() after the final chunk")
        if len(self.pending):
            if not final and len(self.pending) + n < self.rescan_at:
                self.pending += data
                return
            # Finish the carried record on a growing prefix of `data` rather than copying all
            # of `data` behind it (a copy into fresh pages, ~10 % of a parse): only the bytes
            # up to the first record boundary in `data` are copied, usually one line.
            carried = len(self.pending)
            k = max(65536, carried)
            while True:
                if k >= n:
                    k = n
                joined = self.pending + data[:k]
                consumed = self._consume(joined, final and k == n)
                if consumed >= carried:  # past the carried bytes: on a boundary inside data
                    off = consumed - carried
                    self.pending = bytearray()
                    break
                if k == n:
                    self.pending = joined[consumed:]
                    self.rescan_at = 2 * len(self.pending)
                    if final:
                        self.finished = True
                    return
                k *= 2
        rest = memoryview(data)[off:] if off else data
        n = len(rest)
        consumed = self._consume(rest, final)
        if consumed < n:
            self.pending = bytearray(rest[consumed:])
            self.rescan_at = 2 * len(self.pending)
        if final:
            self.finished = True

    def finish(self):
        """Hand the columns to Arrow (no copy) and return a CoreOutput. Once: the buffers
        belong to the returned arrays afterwards."""
        cdef int i
        cdef Py_ssize_t n
        if self.handed_over:
            raise RuntimeError("finish() called twice")
        if not self.finished:
            self.feed(b"", True)
        self.handed_over = True
        n = self.nrows_
        arrays = []
        naive = {}
        for i in range(self.ncols_out):
            array, bits = _column_to_arrow(&self.cols[i], n)
            arrays.append(array)
            if bits is not None:
                naive[i] = bits
        lines = pa.Array.from_buffers(pa.int64(), n, [None, _to_arrow_buffer(<void**>&self.lines, n * 8)])
        return CoreOutput(arrays, lines, self.rejects, naive, self.reject_keys, self.broken)
