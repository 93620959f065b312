# A Parser's record identity, part of the `connectbatch._csvcore` C unit (included by _csvcore.pyx).
#
# Which fields hold a record's key and qualifier (CallSessionId, VendorEventId: the results
# file names a rejected record by them, `Parser._reject_key`), and which empty required cell
# another cell's value excuses (CallerId when CallStatus says UNKNOWN_CALLERID): checked once
# when a parser is made (`_plan_keys`), read per record without the GIL (`_excused`).


cdef int _plan_keys(Parser p, plan, Py_ssize_t nfile, Py_ssize_t nout) except -1:
    """Set `p`'s key, qualifier and excused slots from `plan`; a plan that names a slot that
    is not a text column of the `nout` raises ValueError (the record loop reads them unchecked)."""
    cdef Py_ssize_t i
    p.key_slot = _text_slot(p, plan.key_slot, nout, "key")
    p.qualifier_slot = _text_slot(p, plan.qualifier_slot, nout, "qualifier")
    p.key_field = p.qualifier_field = -1
    for i in range(nfile):
        if p.key_slot >= 0 and p.field_slot[i] == p.key_slot and p.key_field < 0:
            p.key_field = i
        if p.qualifier_slot >= 0 and p.field_slot[i] == p.qualifier_slot and p.qualifier_field < 0:
            p.qualifier_field = i
    p.excused_slot = -1
    p.excuse_slot = -1
    for i, slot in enumerate(plan.slots):
        if slot.empty_when is None:
            continue
        if p.excused_slot >= 0:
            raise ValueError("at most one slot may have empty_when")
        excuse_slot, excuse_value = slot.empty_when
        p.excuse_slot = _text_slot(p, excuse_slot, nout, "excusing")
        if p.excuse_slot < 0:
            raise ValueError("empty_when names no slot")
        excuse_value = bytes(excuse_value)
        p.keep.append(excuse_value)
        p.excuse_value = excuse_value
        p.excuse_len = len(excuse_value)
        p.excused_slot = <int>i
    return 0


cdef int _text_slot(Parser p, slot, Py_ssize_t nout, str what) except -2:
    """`slot` (-1: none) checked: _reject_key reads the text column's offsets unchecked."""
    cdef int s = slot
    if s == -1:
        return -1
    if s < -1 or s >= nout or p.cols[s].width != 0:
        raise ValueError(f"the {what} slot {s} is not a text column of the {nout}")
    return s


cdef inline bint _excused(Parser p) noexcept nogil:
    """Whether the record in hand wrote the excusing value (UNKNOWN_CALLERID) into row
    `nrows` of the excusing column; only asked when that cell was not rejected, so the
    row holds this record's value, not a rejected record's before it."""
    cdef Column* col = &p.cols[p.excuse_slot]
    cdef Py_ssize_t row = p.nrows_
    cdef int32_t start = col.offsets[row]
    if not col.valid[row >> 3] & (1 << (row & 7)):
        return False
    return (col.offsets[row + 1] - start == p.excuse_len
            and memcmp(col.data + start, p.excuse_value, p.excuse_len) == 0)
