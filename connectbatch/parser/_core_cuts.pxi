# Where a threaded parse may cut the bytes, part of the `connectbatch._csvcore` C unit
# (included by _csvcore.pyx after the tokenizer).
#
# Owns: the quote parity of a span (SSE2, at about memory speed) and the cuts built on it:
# `cut_block`, `cut_first`, `cut_window` (parser/blocks.py). A cut is only a guess at a
# record boundary; the parser of the block before verifies it (see blocks.py).


cdef extern from *:
    """
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* 1 if p[:n] holds an odd number of quotes. Only the parity matters, so the quote
       marks of every 16 (SSE2) or 8 (SWAR) bytes are XOR-folded and counted once: about
       memory speed, which matters because a threaded parse scans every byte once more. */
    static int cb_quote_parity(const unsigned char* p, Py_ssize_t n) {
        Py_ssize_t i = 0;
        unsigned long long acc = 0;
        int parity = 0;
    #if defined(__SSE2__)
        const __m128i q = _mm_set1_epi8('"');
        unsigned int m = 0;
        for (; i + 64 <= n; i += 64) {
            m ^= (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(p + i)), q));
            m ^= (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(p + i + 16)), q));
            m ^= (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(p + i + 32)), q));
            m ^= (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i*)(p + i + 48)), q));
        }
        acc = m;
    #endif
        for (; i + 8 <= n; i += 8) {
            unsigned long long w, t;
            memcpy(&w, p + i, 8);
            t = w ^ 0x2222222222222222ULL;
            /* a byte of t is zero exactly where w holds a quote; this test marks each one */
            acc ^= ~(((t & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | t | 0x7F7F7F7F7F7F7F7FULL);
        }
        while (acc) {  /* parity of the marks, without a popcount instruction */
            parity ^= 1;
            acc &= acc - 1;
        }
        for (; i < n; i++) parity ^= (p[i] == '"');
        return parity;
    }
    """
    int cb_quote_parity(const unsigned char* p, Py_ssize_t n) noexcept nogil


cdef inline int _quote_parity(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    return cb_quote_parity(p, n)


cdef Py_ssize_t _cut_block(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k = n
    cdef int parity = _quote_parity(p, n)
    # Backwards to the last LF with an even number of quotes before it.
    while k > 0:
        if p[k - 1] == LF and parity == 0:
            return k
        if p[k - 1] == QUOTE:
            parity ^= 1
        k -= 1
    return 0


def cut_block(data):
    """Where a threaded parse may cut `data` (bytes that start on a record boundary): just
    after the last LF preceded by an even number of quotes, or 0 if there is none.

    An even count means the LF is outside any quoted field in a well-formed file, so the
    cut is a record boundary. In a malformed file (a stray quote inside an unquoted field)
    it may not be; the caller verifies every cut by checking that the parser of the block
    before it ended exactly there, so a wrong guess costs time, never a different result."""
    cdef const unsigned char[::1] view
    cdef Py_ssize_t n = len(data), cut
    if n == 0:
        return 0
    view = data
    with nogil:
        cut = _cut_block(&view[0], n)
    return cut


def cut_first(data, int quotes):
    """Just after the first LF of `data` preceded by an even number of quotes, counting
    `quotes` seen before `data` starts; 0 if there is none. Joins the tail of one chunk
    (which starts on a cut) to the next chunk without copying the whole next chunk."""
    cdef const unsigned char[::1] view
    cdef Py_ssize_t n = len(data), i = 0
    cdef int parity = quotes & 1
    if n == 0:
        return 0
    view = data
    with nogil:
        while i < n:
            if view[i] == QUOTE:
                parity ^= 1
            elif view[i] == LF and parity == 0:
                break
            i += 1
    return i + 1 if i < n else 0


def cut_window(data, int parity):
    """(cut, parity at the end) of a window of a threaded parse that starts after `parity`
    (mod 2) quotes: cut is just after the last LF with an even number of quotes before it,
    counting those before the window, or 0 if there is none. One pass for the parity at
    memory speed, then backwards from the end: the window need not start on a boundary, so
    the workers cut their own windows in parallel and chain only the parity."""
    cdef const unsigned char[::1] view
    cdef const unsigned char* p
    cdef Py_ssize_t n = len(data), k
    cdef int end, par
    if n == 0:
        return 0, parity & 1
    view = data
    with nogil:
        p = &view[0]
        end = (parity ^ _quote_parity(p, n)) & 1
        par = end
        k = n
        while k > 0:
            if p[k - 1] == LF and par == 0:
                break
            if p[k - 1] == QUOTE:
                par ^= 1
            k -= 1
    return k, end


def quote_parity(data):
    """1 if `data` holds an odd number of quote bytes, else 0."""
    cdef const unsigned char[::1] view
    cdef Py_ssize_t n = len(data)
    cdef int parity
    if n == 0:
        return 0
    view = data
    with nogil:
        parity = _quote_parity(&view[0], n)
    return parity
