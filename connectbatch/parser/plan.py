"""What both parser cores share: the header-to-schema plan, reject codes (their wording is
`reasons`'), and turning a core's columns into the final typed table.

The Cython core (`_csvcore.pyx`) and the Python reference core (`_refcore.py`) tokenize and
type fields and must agree byte for byte; all else lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch.errors import ConfigurationError, ConnectBatchError, ParseError
from connectbatch.parser.header_hints import delimiter_hint, missing_message, misspelled_message
from connectbatch.schemas import DataType, Kind, codes

# The enums below are the one Python copy of the numbers the cores exchange with this module.
# The compiled core declares them once in `_csvcore.pxd` and exports them by name (KINDS,
# CODES, HEADER_STATUSES); `check_core_constants()` refuses a compiled core that disagrees
# (a stale build), and tests/unit/test_parser_enums.py fails if either side is edited alone.


class Code(IntEnum):
    """Why a record was rejected. The cores return these numbers; `reason()` words them."""

    FIELD_COUNT = 1
    INVALID_TEXT = 2
    NUL_BYTE = 3
    REQUIRED_EMPTY = 4
    NOT_INTEGER = 5
    INT_RANGE = 6
    NEGATIVE = 7
    NOT_WHOLE = 8  # no longer produced: durations round fractions (kept: codes are stable)
    BAD_TIMESTAMP = 9
    INVALID_DATE = 10
    BAD_DECIMAL = 11
    DECIMAL_SCALE = 12
    DECIMAL_RANGE = 13
    BAD_ENUM = 14
    BAD_COUNTRY = 15
    BAD_CURRENCY = 16
    UNTERMINATED_QUOTE = 17
    JUNK_AFTER_QUOTE = 18
    CLOCK_RANGE = 19  # a clock-form duration with minutes or seconds past 59


class CoreKind(IntEnum):
    """Converter selector passed to the cores (one per schema Kind, plus raw text)."""

    STRING = 0
    INTEGER = 1
    SECONDS = 2
    DECIMAL = 3
    TIMESTAMP = 4
    ENUM = 5
    COUNTRY = 6
    CURRENCY = 7
    RAW = 8  # data_type=None: text as-is, empty cells stay ""


class HeaderStatus(IntEnum):
    """What a core's `read_header()` found at the start of the file."""

    OK = 0
    INCOMPLETE = 1  # no complete first record yet: feed more bytes
    EMPTY = 2
    UNTERMINATED = 3  # a quoted name is never closed
    JUNK = 4  # text after a closing quote


CORE_CONSTANTS: dict[str, type[IntEnum]] = {
    "KINDS": CoreKind,
    "CODES": Code,
    "HEADER_STATUSES": HeaderStatus,
}


def check_core_constants(core: ModuleType) -> None:
    """Refuse a compiled core whose enums (from `_csvcore.pxd`) differ from the ones here.

    Both sides are compiled or written by hand; a mismatch would word rejects wrongly or
    select the wrong converter without failing, so it stops the parse instead."""
    for attribute, enum in CORE_CONSTANTS.items():
        ours = {member.name: member.value for member in enum}
        theirs = getattr(core, attribute, None)
        if theirs != ours:
            raise ConnectBatchError(
                f"the compiled parser's {attribute} ({theirs}) differ from "
                f"connectbatch.parser.plan.{enum.__name__} ({ours}); rebuild it with `make build`"
            )


_CORE_KIND = {
    Kind.STRING: CoreKind.STRING,
    Kind.INTEGER: CoreKind.INTEGER,
    Kind.SECONDS: CoreKind.SECONDS,
    Kind.DECIMAL: CoreKind.DECIMAL,
    Kind.TIMESTAMP: CoreKind.TIMESTAMP,
    Kind.ENUM: CoreKind.ENUM,
    Kind.COUNTRY: CoreKind.COUNTRY,
    Kind.CURRENCY: CoreKind.CURRENCY,
}

COUNTRY_CODES: frozenset[bytes] = frozenset(c.encode() for c in codes.COUNTRIES)
CURRENCY_CODES: frozenset[bytes] = frozenset(c.encode() for c in codes.CURRENCIES)


@dataclass(frozen=True)
class Slot:
    """One output column: what the core must do with the field that feeds it."""

    name: str
    kind: CoreKind
    required: bool
    default: bytes | None  # canonical value for an empty cell (coded kinds only)
    allowed: tuple[bytes, ...] = ()  # canonical spellings for ENUM
    non_negative: bool = False  # INTEGER: a negative value is a NEGATIVE reject
    # A required cell that may be empty when the record's cell for slot `[0]` was read as
    # `[1]` (schemas.Column.empty_when, resolved per file): an empty CallerId when CallStatus
    # is UNKNOWN_CALLERID. None: no excuse, also when the file has no such column (CallStatus
    # absent is ANSWER). Text slots only, at most one per plan (`_excusable`).
    empty_when: tuple[int, bytes] | None = None


@dataclass(frozen=True)
class Plan:
    """How one file's header maps onto output slots. Built once per file, read by a core."""

    delimiter: int
    header: tuple[str, ...]  # the file's own column names, in file order
    field_slot: tuple[int, ...]  # per file column: index into `slots`, or -1 to ignore
    slots: tuple[Slot, ...]  # output columns fed by the file, in slot order
    unknown_columns: tuple[str, ...] = ()
    absent: tuple[str, ...] = field(default=())  # schema columns missing from the file
    # Slot of the data type's key column (CallSessionId, ...), or -1: its value is kept for
    # rejected records too, so the sender's results file can name them.
    key_slot: int = -1
    # Slot of the key's qualifier (VendorEventId: which event of the call), or -1; kept for
    # rejected records as the key is, so the results file names the event too. Text only.
    qualifier_slot: int = -1
    # Whether a record with one empty field past the header's last is read without it (the
    # rows end with a delimiter, the header does not). A file-wide fact, decided on the first
    # data rows (parser.api._rows_end_with_delimiter): where one has the header's count, a
    # row with one field more holds a value with an unquoted delimiter ("$1,234.50"),
    # and dropping its empty last field would shift every value after the comma one column.
    extra_empty_ok: bool = True

    @property
    def ncols(self) -> int:
        return len(self.header)

    @property
    def last_column_unnamed(self) -> bool:
        """Whether the header's last field has no name: a trailing delimiter on the header
        line alone, as some exports write it. Then a record one field short is read as if
        that last field were empty, rather than every record being rejected."""
        return bool(self.header) and not self.header[-1].strip()

    def column_of(self, field_index: int) -> str | None:
        """The name a reject shows for a file column: the schema name if mapped."""
        if 0 <= field_index < len(self.field_slot):
            slot = self.field_slot[field_index]
            return self.slots[slot].name if slot >= 0 else self.header[field_index]
        return None


def check_delimiter(delimiter: str) -> int:
    if len(delimiter) != 1 or delimiter in '"\r\n' or ord(delimiter) > 127:
        raise ConfigurationError(
            f"delimiter must be one ASCII character other than a quote or newline, not {delimiter!r}"
        )
    return ord(delimiter)


# What bytes that are not UTF-8 most often are, and what to do. A Mac Roman export (older
# Mac Excel, CR line ends) read as cp1252, as the hint once said, loaded "MontrŽal" silently.
ENCODING_HINT = (
    "; if the file comes from Windows (cp1252, latin-1) or an older Mac (mac_roman), "
    "set the connection's encoding to that"
)


def decode_header(fields: list[bytes], line: int, encoding: str = "utf-8") -> list[str]:
    joined = b"\x00".join(fields)
    if joined.count(b"\x00") == len(fields) - 1:  # no NUL in a name: the usual case, at C speed
        try:  # one decode of them all (a header may be huge); NUL ends any UTF-8 sequence
            return joined.decode("utf-8").split("\x00")
        except UnicodeDecodeError:
            pass  # the loop below says which column
    names = []
    for i, raw in enumerate(fields, 1):
        if b"\x00" in raw:
            raise ParseError(f"line {line}: header column {i} contains a NUL byte; is this a CSV file?")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            hint = ENCODING_HINT if encoding == "utf-8" else ""
            raise ParseError(f"line {line}: header column {i} is not valid {encoding} text{hint}") from None
    return names


def raw_plan(header: list[str], delimiter: int) -> Plan:
    """data_type=None: every column kept as text under the header's own name."""
    slots = tuple(Slot(name, CoreKind.RAW, False, None) for name in header)
    return Plan(delimiter, tuple(header), tuple(range(len(header))), slots)


def typed_plan(
    header: list[str],
    data_type: DataType,
    delimiter: int,
    column_map: dict[str, str] | None,
    line: int,
) -> Plan:
    """Map the file's header onto the data type's columns.

    Names match after trimming spaces, case-insensitively; `column_map` (partner name ->
    schema name) is applied first. The cores trim the values of every column such a plan
    maps, text included (refcore.convert says why); a `raw_plan` keeps text as written.
    Missing required columns, duplicates and names spelling a column another way raise
    ParseError naming every culprit at once.
    """
    by_lower = {c.name.lower(): c for c in data_type.columns}
    renames = _normalise_column_map(column_map, data_type)
    keys = header_keys(header)
    # Only the names that map somewhere go through the loop below: a header of 400,000
    # unknown names (a wrong file) cost ~0.3 s in a Python step per name (issue 13).
    mapped = renames.keys() | by_lower.keys()
    slot_of: dict[str, int] = {}
    slots: list[Slot] = []
    field_slot = [-1] * len(header)
    first_seen: dict[str, int] = {}
    duplicates: list[str] = []
    for index in [i for i, key in enumerate(keys) if key in mapped]:
        key = keys[index]
        target = by_lower[renames.get(key, key)]
        if target.name in first_seen:
            duplicates.append(f"{target.name} (columns {first_seen[target.name]} and {index + 1})")
            continue
        first_seen[target.name] = index + 1
        slot_of[target.name] = len(slots)
        field_slot[index] = len(slots)
        slots.append(
            Slot(
                target.name,
                _CORE_KIND[target.kind],
                target.required,
                target.default.encode() if target.default is not None else None,
                tuple(v.encode() for v in target.allowed),
                target.non_negative,
            )
        )
    unknown = [raw for raw, key in zip(header, keys, strict=True) if key and key not in mapped]
    unknown_keys = [key for key in keys if key and key not in mapped]
    if duplicates:
        raise ParseError(f"line {line}: the header names a column twice: {'; '.join(duplicates)}")
    missing = [name for name in data_type.required_columns if name not in slot_of]
    if missing:
        line_text = chr(delimiter).join(header)  # the header line again, near enough
        hint = delimiter_hint(lambda d: line_text.split(chr(d)), delimiter, data_type, renames)
        message = missing_message(missing, unknown_keys, lambda key: header[keys.index(key)], data_type, line)
        raise ParseError(message + hint)
    absent = tuple(c.name for c in data_type.columns if c.name not in slot_of)
    if spelled := misspelled_message(unknown_keys, absent, lambda key: header[keys.index(key)], line):
        raise ParseError(spelled)
    slots = _excusable(slots, slot_of, data_type)
    key_slot = slot_of.get(data_type.key_columns[0], -1) if data_type.key_columns else -1
    qualifier_slot = slot_of.get(data_type.key_columns[1], -1) if len(data_type.key_columns) > 1 else -1
    if qualifier_slot >= 0 and slots[qualifier_slot].kind is not CoreKind.STRING:
        raise ValueError(f"{data_type.key_columns[1]}: a key's qualifier must be a text column")
    return Plan(
        delimiter, tuple(header), tuple(field_slot), tuple(slots), tuple(unknown), absent, key_slot,
        qualifier_slot,
    )  # fmt: skip


def _excusable(slots: list[Slot], slot_of: dict[str, int], data_type: DataType) -> list[Slot]:
    """`slots` with `Slot.empty_when` set where the schema excuses an empty required cell
    and this file has the column that excuses it.

    Both cores decide such a cell only once the record's other cell is read (it may come
    later in the file), so the rule is kept narrow: the excusing column is text (its value is
    compared as written into its column) and at most one column is excused per data type."""
    excused = [
        (c.name, c.empty_when) for c in data_type.columns if c.empty_when and c.required and c.name in slot_of
    ]
    if len(excused) > 1:
        raise ValueError(f"{data_type.key}: at most one column may be excused when empty")
    for name, (by, value) in excused:
        if by not in slot_of:
            continue  # the file has no such column: its cells are never excused
        if name in data_type.key_columns or slots[slot_of[by]].kind not in (CoreKind.STRING, CoreKind.ENUM):
            raise ValueError(f"{name}: only a text column excuses an empty cell, and never a key's")
        slots[slot_of[name]] = replace(slots[slot_of[name]], empty_when=(slot_of[by], value.encode()))
    return slots


def header_keys(header: list[str]) -> list[str]:
    """Each header name as `typed_plan` matches it: trimmed and lower-cased. A long header is
    lower-cased as one string joined by NULs (unless a name holds one), which is the same as
    name by name: a NUL is neither cased nor case-ignorable, so it ends the context of a
    final sigma as a name's end does."""
    joined = "\0".join(header)
    if len(header) < 64 or joined.count("\0") != len(header) - 1:
        return [name.strip().lower() for name in header]
    return [key.strip() for key in joined.lower().split("\0")]


def _normalise_column_map(column_map: dict[str, str] | None, data_type: DataType) -> dict[str, str]:
    if not column_map:
        return {}
    known = {c.name.lower() for c in data_type.columns}
    out: dict[str, str] = {}
    for partner, ours in column_map.items():
        if ours.strip().lower() not in known:
            raise ConfigurationError(
                f"column map sends {partner!r} to {ours!r}, which is not a column of {data_type.label}"
            )
        out[partner.strip().lower()] = ours.strip().lower()
    return out


def normalised_column_map(column_map: dict[str, str] | None, data_type: DataType) -> dict[str, str]:
    """The column map as `typed_plan` applies it (lower-case partner name -> schema name)."""
    return _normalise_column_map(column_map, data_type)


@dataclass
class CoreOutput:
    """What a core hands back: one Arrow array per slot, in slot order, plus the physical
    line each kept row started on, and raw rejects (line, field index or -1, code, bytes,
    extra). Timestamps are UTC microseconds; `naive[slot]` marks values that had no offset.
    """

    arrays: list[pa.Array]
    lines: pa.Array
    rejects: list[tuple[int, int, int, bytes, int]]
    naive: dict[int, pa.Array] = field(default_factory=dict)
    # line -> (key, qualifier) of a record rejected for its field values, each None unless
    # it was read fine (the qualifier: only with a `Plan.qualifier_slot`)
    reject_keys: dict[int, tuple[bytes | None, bytes | None]] = field(default_factory=dict)
    # (line, field index) of each text field a quote held a line break in, kept row or not:
    # the few records parser.run_on looks at (a stray quote's run-on hides there)
    broken: list[tuple[int, int]] = field(default_factory=list)


def assemble(plan: Plan, out: CoreOutput, data_type: DataType | None, timezone: str) -> pa.Table:
    """Build the final table: schema order, absent columns filled with their default or
    null, values without an offset moved from the connection's time zone to UTC."""
    if data_type is None:
        names = list(plan.header)
        return pa.Table.from_arrays(out.arrays, names=names) if names else pa.table({})
    n = len(out.lines)
    by_name = {slot.name: i for i, slot in enumerate(plan.slots)}
    arrays = []
    for col in data_type.columns:
        i = by_name.get(col.name)
        if i is None:
            if col.default is not None:
                arrays.append(pa.repeat(pa.scalar(col.default, col.arrow_type), n))
            else:
                arrays.append(pa.nulls(n, col.arrow_type))
            continue
        arr = out.arrays[i]
        if i in out.naive and timezone.upper() != "UTC":
            arr = _localise(arr, out.naive[i], timezone)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=data_type.arrow_schema())


# The instants a Python datetime can hold (years 1-9999 in UTC), in microseconds.
UTC_MIN_MICROS = -62135596800000000
UTC_MAX_MICROS = 253402300799999999


def drop_outside_utc_range(out: CoreOutput, timezone: str) -> list[tuple[int, int, str]]:
    """Take out the rows whose offset-less time leaves years 1-9999 once moved from
    `timezone` to UTC (0001-01-01 00:00 in a zone east of Greenwich is in year 0): the cores
    check that range for times with an offset, but the connection's zone is applied after
    them. Returns (line, slot, wall time as written) for each, to be rejected."""
    if timezone.upper() == "UTC" or not out.naive:
        return []
    outside_any: pa.Array | None = None
    found: list[tuple[int, int, str]] = []
    for i, naive in out.naive.items():
        micros = _localise(out.arrays[i], naive, timezone).cast(pa.int64())
        outside = pc.fill_null(
            pc.or_(pc.less(micros, UTC_MIN_MICROS), pc.greater(micros, UTC_MAX_MICROS)), False
        )
        if not pc.any(outside).as_py():
            continue
        wall = out.arrays[i].cast(pa.timestamp("us"))
        for j in pc.indices_nonzero(outside).to_pylist():
            found.append((int(out.lines[j].as_py()), i, wall[j].as_py().isoformat(sep=" ")))
        outside_any = outside if outside_any is None else pc.or_(outside_any, outside)
    if outside_any is not None:
        keep = pc.invert(outside_any)
        out.arrays = [a.filter(keep) for a in out.arrays]
        out.lines = out.lines.filter(keep)
        out.naive = {k: v.filter(keep) for k, v in out.naive.items()}
    return found


def _localise(arr: pa.Array, naive: pa.Array, timezone: str) -> pa.Array:
    """Values written without an offset are wall-clock times in `timezone`: reinterpret
    them as `zoneinfo` does for fold=0, the same in both cores since it runs here once.

    Ambiguous times (the repeated hour when clocks go back) take the earlier instant, the
    offset in force before the transition: 2026-11-01 01:30 New York -> 05:30Z (EDT).
    Times in a gap (the skipped hour when clocks go forward) are read with the offset in
    force before the transition too: 2026-03-08 02:30 New York -> 07:30Z (EST, -05:00),
    i.e. 03:30 EDT. Arrow's nonexistent="earliest" alone would give 06:59:59.999999Z (the
    last instant before the gap), which no sender meant.
    """
    if not pc.any(naive).as_py():
        return arr
    wall = arr.cast(pa.timestamp("us"))
    try:
        # For a time in the gap this is the instant just before the transition, whose
        # offset is the one before it; for every other time it is the answer already.
        before = pc.assume_timezone(wall, timezone, ambiguous="earliest", nonexistent="earliest")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigurationError(f"unknown time zone {timezone!r}") from exc
    offset = pc.subtract(
        pc.local_timestamp(before).cast(pa.int64()), before.cast(pa.timestamp("us")).cast(pa.int64())
    )
    local = pc.subtract(wall.cast(pa.int64()), offset).cast(arr.type)
    return pc.if_else(naive, local, arr)
