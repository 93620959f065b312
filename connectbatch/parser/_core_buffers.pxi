# Memory for the columns, part of the `connectbatch._csvcore` C unit (included by _csvcore.pyx).
#
# Owns: the malloc policy (a fixed mmap threshold), allocating and freeing one `Column`'s
# buffers, and handing finished buffers to Arrow without a copy (`_Owned`), typed per kind.
# Allocation follows one rule so a failure half way can never free garbage: every pointer a
# free touches is NULL (calloc'd) before the first thing that can raise.


cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    #include <stdint.h>
    #include <sys/mman.h>
    #include <unistd.h>
    /* glibc raises its mmap threshold after the first large free, after which growing
       column buffers live on the heap and realloc copies them, leaving holes behind.
       A fixed threshold keeps every large buffer in its own mapping, so realloc is an
       mremap (no copy) and the parse's peak memory stays close to its output size. */
    static void cb_fix_mmap_threshold(void) { mallopt(M_MMAP_THRESHOLD, 256 * 1024); }
    /* Ask for transparent huge pages on a column buffer of 2 MB or more, while
       cb_huge_pages_on (set by `use_huge_pages`, parser/huge_pages.py decides): the kernel
       then fills it 2 MB per page fault instead of 4 KB. Faults on fresh output buffers were
       about a fifth of a 1M-row parse; with the hint a 1-thread parse took 0.68 s instead of
       0.75 s (issue 13). Such a buffer is always its own mapping (the threshold above), and
       malloc_usable_size reaches its end, so the advice covers exactly that mapping and
       never splits it (a split mapping would make realloc copy). A no-op where THP is off. */
    static int cb_huge_pages_on = 0;
    static void cb_huge_pages(void* p) {
    #if defined(MADV_HUGEPAGE)
        size_t n, page;
        uintptr_t start, end;
        if (p == NULL || !cb_huge_pages_on) return;
        n = malloc_usable_size(p);
        if (n < (size_t)2 * 1024 * 1024) return;
        page = (size_t)sysconf(_SC_PAGESIZE);
        start = (uintptr_t)p & ~(uintptr_t)(page - 1);
        end = ((uintptr_t)p + n + page - 1) & ~(uintptr_t)(page - 1);
        madvise((void*)start, end - start, MADV_HUGEPAGE);
    #endif
    }
    #else
    static void cb_fix_mmap_threshold(void) {}
    static int cb_huge_pages_on = 0;
    static void cb_huge_pages(void* p) { (void)p; }
    #endif
    """
    void cb_fix_mmap_threshold()
    void cb_huge_pages(void* p) noexcept nogil
    int cb_huge_pages_on

cb_fix_mmap_threshold()


def use_huge_pages(bint on):
    """Whether big column buffers ask for transparent huge pages from now on, in this
    process (parser/huge_pages.py decides, per big parse)."""
    global cb_huge_pages_on
    cb_huge_pages_on = 1 if on else 0


# ------------------------------------------------------------------ one column

cdef int _column_init(Column* col, slot, list keep, Py_ssize_t cap) except -1:
    """Set up `col` (zeroed by the caller) for `slot`, a plan.Slot, with room for `cap` rows.

    Raises on a bad slot or no memory; whatever was allocated by then is freed by
    _column_free, which skips the NULL rest. `keep` holds the Python bytes that `col` points
    into (default and allowed values) for as long as the parser lives.
    """
    cdef Py_ssize_t j
    col.kind = int(slot.kind)
    if col.kind < K_STRING or col.kind > K_RAW:
        raise ValueError(f"unknown column kind {col.kind}")
    col.required = bool(slot.required)
    col.non_negative = bool(slot.non_negative)
    col.width = 16 if col.kind == K_DECIMAL else (
        8 if col.kind in (K_INTEGER, K_SECONDS, K_TIMESTAMP) else 0)
    if slot.default is not None:
        keep.append(slot.default)
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
            keep.append(value)
            keep.append(upper)
            col.allowed[j] = value
            col.allowed_upper[j] = upper
            col.allowed_len[j] = len(value)
    if col.width:
        col.data = <unsigned char*>malloc(cap * col.width)
        col.data_cap = cap * col.width
    else:
        col.data_cap = 65536
        col.data = <unsigned char*>malloc(col.data_cap)
        col.offsets = <int32_t*>malloc((cap + 1) * sizeof(int32_t))
        if col.offsets == NULL:
            raise MemoryError()
        col.offsets[0] = 0
    col.valid = <uint8_t*>malloc((cap + 7) // 8)
    if col.kind == K_TIMESTAMP:
        col.naive = <uint8_t*>malloc((cap + 7) // 8)
        if col.naive == NULL:
            raise MemoryError()
    if col.data == NULL or col.valid == NULL:
        raise MemoryError()
    cb_huge_pages(col.data)
    cb_huge_pages(col.offsets)
    return 0


cdef void _column_free(Column* col) noexcept nogil:
    """Free what _column_init allocated (NULL pointers, handed over or never made, are skipped)."""
    free(col.data)
    free(col.offsets)
    free(col.valid)
    free(col.naive)
    free(col.allowed)
    free(col.allowed_upper)
    free(col.allowed_len)


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


cdef tuple _column_to_arrow(Column* col, Py_ssize_t n):
    """(array, naive flags or None) of the first `n` rows; the buffers move to Arrow and the
    column's pointers are cleared."""
    cdef Py_ssize_t bitmap = (n + 7) // 8
    typ = _ARROW_TYPES[col.kind]
    valid = _to_arrow_buffer(<void**>&col.valid, bitmap)
    if col.width:
        data = _to_arrow_buffer(<void**>&col.data, n * col.width)
        array = pa.Array.from_buffers(typ, n, [valid, data])
    else:
        offsets = _to_arrow_buffer(<void**>&col.offsets, (n + 1) * sizeof(int32_t))
        data = _to_arrow_buffer(<void**>&col.data, col.data_cap)
        array = pa.Array.from_buffers(typ, n, [valid, offsets, data])
    if col.naive == NULL:
        return array, None
    bits = _to_arrow_buffer(<void**>&col.naive, bitmap)
    return array, pa.Array.from_buffers(pa.bool_(), n, [None, bits])


def shifted_lines(arr, int64_t base):
    """The values of an int64 Arrow array plus `base`, as a new int64 Arrow array: the line
    numbers of a block counted from 0, moved to where the block starts in the file. Here
    rather than in Arrow compute, whose Python-to-Arrow conversion of `base` imports pandas
    (~0.2 s) on first use."""
    cdef Py_ssize_t i, n = len(arr), first = arr.offset
    cdef const int64_t[::1] src
    cdef int64_t* dst = <int64_t*>malloc(max(1, n) * sizeof(int64_t))
    if dst == NULL:
        raise MemoryError()
    try:
        if n:
            src = memoryview(arr.buffers()[1]).cast("B").cast("q")
            with nogil:
                for i in range(n):
                    dst[i] = src[first + i] + base
        return pa.Array.from_buffers(pa.int64(), n, [None, _to_arrow_buffer(<void**>&dst, n * 8)])
    finally:
        free(dst)  # NULL once handed over


def joined_lines(parts):
    """One int64 Arrow array of `parts`, (int64 array, first, n, base) each, in order: rows
    [first, first + n) of each array plus its `base`. The line numbers of a threaded parse,
    put together from its blocks (counted from 0) once the calling thread knows where each
    block starts: one allocation and one pass, where a shifted copy per block and then a
    concatenation made two copies and ~100 fresh allocations on the one thread."""
    cdef Py_ssize_t total = 0, at = 0, i, first, n
    cdef int64_t base
    cdef const int64_t[::1] src
    cdef int64_t* dst
    checked = []
    for arr, first, n, base in parts:
        if first < 0 or n < 0 or first + n > len(arr) or arr.null_count:
            raise ValueError("joined_lines: a part is outside its array or has nulls")
        if n:
            checked.append((arr, first, n, base))
            total += n
    dst = <int64_t*>malloc(max(1, total) * sizeof(int64_t))
    if dst == NULL:
        raise MemoryError()
    cb_huge_pages(dst)
    try:
        for arr, first, n, base in checked:
            src = memoryview(arr.buffers()[1]).cast("B").cast("q")
            first += arr.offset
            with nogil:
                for i in range(n):
                    dst[at + i] = src[first + i] + base
            at += n
        return pa.Array.from_buffers(pa.int64(), total, [None, _to_arrow_buffer(<void**>&dst, total * 8)])
    finally:
        free(dst)  # NULL once handed over
