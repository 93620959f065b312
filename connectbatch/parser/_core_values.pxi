# The value converters, part of the `connectbatch._csvcore` C unit (included by _csvcore.pyx).
#
# Owns: strict UTF-8 validation and one converter per typed kind (integer, seconds, decimal,
# timestamp), each `(bytes, length, out*) -> 0 or a C_* reject code`, plus the lookup tables
# for country and currency codes. They run without the GIL on one already-trimmed field and
# never raise: the parser records the returned code as a reject.


cdef uint8_t COUNTRY_TABLE[676]
cdef uint8_t CURRENCY_TABLE[17576]
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


cdef inline bint _is_null_word(const unsigned char* s) noexcept nogil:
    """Whether the 4 bytes at s spell NULL in any case (a SQL export's empty cell): a column
    with a default takes it then, as the spec's "When NULL, defaults to US" says."""
    return ((s[0] | 0x20) == 110 and (s[1] | 0x20) == 117 and (s[2] | 0x20) == 108
            and (s[3] | 0x20) == 108)


cdef inline Py_ssize_t _pad_before(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """How many bytes of padding s[:n] starts with: spaces, tabs and no-break spaces (U+00A0,
    C2 A0), which a partner never means (refvalues._trim). For valid UTF-8 only."""
    cdef Py_ssize_t a = 0
    while a < n:
        if s[a] == 32 or s[a] == 9:
            a += 1
        elif s[a] == 0xC2 and a + 1 < n and s[a + 1] == 0xA0:
            a += 2
        else:
            break
    return a


cdef inline Py_ssize_t _pad_after(const unsigned char* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Where the padding that s[a:b] ends with starts (b when there is none)."""
    while b > a:
        if s[b - 1] == 32 or s[b - 1] == 9:
            b -= 1
        elif s[b - 1] == 0xA0 and b - a >= 2 and s[b - 2] == 0xC2:
            b -= 2
        else:
            break
    return b


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
    """A duration -> whole seconds: seconds, M:SS/MM:SS or H:MM:SS, optional fraction rounded
    half away from zero. The rules and their order are refvalues._seconds's docstring."""
    cdef Py_ssize_t i = 0, start
    cdef bint neg = False
    cdef bint over = False
    cdef bint nonzero_fraction = False
    cdef bint round_up = False
    cdef uint64_t parts[3]
    cdef Py_ssize_t lens[3]
    cdef int nparts = 0
    cdef uint64_t acc, total = 0
    cdef unsigned char c
    if s[0] == 43 or s[0] == 45:
        neg = s[0] == 45
        i = 1
    while True:
        acc = 0
        start = i
        while i < n and _is_digit(s[i]):
            c = s[i]
            if not over:
                if acc > (9223372036854775807ULL - (c - 48)) // 10:
                    over = True
                else:
                    acc = acc * 10 + (c - 48)
            i += 1
        if i == start:
            return C_NOT_INTEGER
        parts[nparts] = acc
        lens[nparts] = i - start
        nparts += 1
        if i < n and s[i] == 58:  # :
            if nparts == 3:
                return C_NOT_INTEGER
            i += 1
            continue
        break
    if i < n:
        if s[i] != 46:  # .
            return C_NOT_INTEGER
        i += 1
        if i < n and s[i] >= 53 and s[i] <= 57:  # first fractional digit 5-9
            round_up = True
        while i < n:
            if not _is_digit(s[i]):
                return C_NOT_INTEGER
            if s[i] != 48:
                nonzero_fraction = True
            i += 1
    if nparts == 2:  # M:SS, any number of minutes (100:00: a long call as minutes and seconds)
        if lens[1] != 2:
            return C_NOT_INTEGER
        if parts[1] > 59:
            return C_CLOCK_RANGE
        if over or parts[0] > 9223372036854775807ULL // 60:
            over = True
        else:
            total = parts[0] * 60 + parts[1]
    elif nparts == 3:  # H:MM:SS
        if lens[1] != 2 or lens[2] != 2:
            return C_NOT_INTEGER
        if parts[1] > 59 or parts[2] > 59:
            return C_CLOCK_RANGE
        if over or parts[0] > 9223372036854775807ULL // 3600:
            over = True
        else:
            total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    else:
        total = parts[0]
    if not over:
        if round_up:
            total += 1
        if total > 9223372036854775807ULL:
            over = True
    if over:
        return C_INT_RANGE
    if neg and (total > 0 or nonzero_fraction):
        return C_NEGATIVE
    out[0] = <int64_t>total
    return 0


cdef inline int _parse_decimal(const unsigned char* s, Py_ssize_t n, int64_t* out) noexcept nogil:
    """Currency amount -> cents: [sign][$][sign] digits (or 1-3 digits then ,ddd groups)
    [.digits]; at most one sign; at most 2 decimals unless the extra ones are zeros, except
    1-3 digits led by 1-9 and exactly 3 decimals (1.500: 1.50, or 1500 with a point between
    thousands), which is BAD_DECIMAL (refvalues._dot_between_thousands)."""
    cdef Py_ssize_t i = 0, lead
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
    lead = i
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
        if run < 1 or run > 3 or s[i - run] == 48:  # 0,500 is a decimal comma, not 500
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
    # int_digits counts comma groups too, so 1-3 means none: 1,500.000 is no grouping
    if frac_len == 3 and int_digits <= 3 and int_digits > 0 and s[lead] != 48:
        return C_BAD_DECIMAL
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
    # H. Hinnant's algorithm, as in refvalues._days_from_civil.
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
    cdef bint leap, has_tz = False, basic, has_seconds = False
    cdef unsigned char c
    # ISO 8601 extended (2026-03-01T14:05:09) or basic (20260301T140509); see refcore's
    # _TS_RE and _TS_BASIC_RE. Basic dates take a basic time after a T only.
    if n >= 8 and _digits(s, 0, 8):
        basic = True
        month = _two(s, 4)
        day = _two(s, 6)
        i = 8
    elif n >= 10 and _digits(s, 0, 4) and s[4] == 45 and _digits(s, 5, 2) and s[7] == 45 \
            and _digits(s, 8, 2):
        basic = False
        month = _two(s, 5)
        day = _two(s, 8)
        i = 10
    else:
        return C_BAD_TIMESTAMP
    year = (s[0] - 48) * 1000 + (s[1] - 48) * 100 + _two(s, 2)
    if i < n:
        c = s[i]
        if not (c == 84 or c == 116 or (c == 32 and not basic)):  # T t space
            return C_BAD_TIMESTAMP
        i += 1
        if basic:
            if i + 4 > n or not _digits(s, i, 4):
                return C_BAD_TIMESTAMP
            hour = _two(s, i)
            minute = _two(s, i + 2)
            i += 4
            if i + 2 <= n and _digits(s, i, 2):  # SS
                second = _two(s, i)
                i += 2
                has_seconds = True
        else:
            if i + 5 > n or not (_digits(s, i, 2) and s[i + 2] == 58 and _digits(s, i + 3, 2)):
                return C_BAD_TIMESTAMP
            hour = _two(s, i)
            minute = _two(s, i + 3)
            i += 5
            if i < n and s[i] == 58:  # :SS
                if i + 3 > n or not _digits(s, i + 1, 2):
                    return C_BAD_TIMESTAMP
                second = _two(s, i + 1)
                i += 3
                has_seconds = True
        if has_seconds and i < n and (s[i] == 46 or s[i] == 44):  # . or ,
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
            elif (c | 32) == 117 and i + 3 == n and (s[i + 1] | 32) == 116 and (s[i + 2] | 32) == 99:
                has_tz = True  # UTC, any case, as BigQuery exports a TIMESTAMP (refvalues._TS_RE)
                i += 3
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
                if om > 59 or oh * 60 + om > (12 * 60 if c == 45 else 14 * 60):
                    return C_INVALID_DATE  # offsets in use: -12:00 to +14:00 (refcore: why)
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

