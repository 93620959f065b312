"""The file-name rules every transfer shares (`connectbatch.transfer.naming`): which names are
still being written, what a connection's wildcard matches, the name an archived file gets, and a
guard that no other module grows its own copy of those rules."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectbatch.transfer import naming
from connectbatch.transfer.naming import IN_FLIGHT_SUFFIXES, archived_name, is_in_flight, matches

PACKAGE = Path(__file__).resolve().parents[2] / "connectbatch"
NAMING = PACKAGE / "transfer" / "naming.py"
ARCHIVE_STAMP = "%Y%m%dT%H%M%SZ"
NOW = dt.datetime(2026, 3, 1, 14, 5, 9, tzinfo=dt.UTC)
STAMP = "20260301T140509Z"

# --- in flight -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", IN_FLIGHT_SUFFIXES)
def test_each_in_flight_suffix_marks_a_name_as_still_being_written(suffix: str) -> None:
    assert is_in_flight(f"calls.csv{suffix}")
    assert is_in_flight(f"calls.csv{suffix.upper()}")  # WinSCP, Windows: any case
    assert not matches(f"calls.csv{suffix}", "*")  # never taken, whatever the pattern


def test_the_in_flight_suffixes_are_those_clients_use() -> None:
    assert set(IN_FLIGHT_SUFFIXES) == {".part", ".tmp", ".filepart", ".crdownload", ".partial"}


@pytest.mark.parametrize(
    "name", ["calls.csv", "calls.part.csv", "partial.csv", "calls.csv.parts", "tmp", "calls.csv.bak"]
)
def test_a_final_name_is_not_in_flight(name: str) -> None:
    assert not is_in_flight(name)


# --- the wildcard ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("Calls_2026_04.csv", "*.csv", True),
        ("Calls_2026_04.csv", "Calls_*.csv", True),
        ("Calls_2026_04.txt", "*.csv", False),
        ("Calls_1.csv", "Calls_?.csv", True),
        ("Calls_12.csv", "Calls_?.csv", False),
        ("anything at all", "*", True),
        ("Calls.csv", "calls.csv", False),  # partners' names are case-sensitive
        ("calls.CSV", "*.csv", False),
        ("report[1].csv", "report[1].csv", True),  # `[` is a literal, not a character class
        ("report1.csv", "report[1].csv", False),
        ("report[a-z].csv", "report[a-z].csv", True),
        ("reportb.csv", "report[a-z].csv", False),
    ],
)
def test_the_wildcard_knows_only_star_and_question_mark(name: str, pattern: str, expected: bool) -> None:
    assert matches(name, pattern) is expected


# --- archive names ---------------------------------------------------------------------------------


def test_a_free_name_is_archived_as_it_is() -> None:
    assert archived_name("calls.csv", set(), NOW) == "calls.csv"
    assert archived_name("calls.csv", {"other.csv"}, NOW) == "calls.csv"


def test_a_taken_name_gets_the_utc_stamp_before_its_extension() -> None:
    assert archived_name("calls.csv", {"calls.csv"}, NOW) == f"calls_{STAMP}.csv"


def test_the_stamp_is_utc_whatever_the_clock_zone() -> None:
    berlin = NOW.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert archived_name("calls.csv", {"calls.csv"}, berlin) == f"calls_{STAMP}.csv"


def test_a_taken_stamped_name_gets_a_counter_from_two() -> None:
    taken = {"calls.csv", f"calls_{STAMP}.csv"}
    assert archived_name("calls.csv", taken, NOW) == f"calls_{STAMP}-2.csv"
    taken.add(f"calls_{STAMP}-2.csv")
    assert archived_name("calls.csv", taken, NOW) == f"calls_{STAMP}-3.csv"


def test_only_the_last_extension_is_kept_after_the_stamp() -> None:
    assert archived_name("calls.csv.gz", {"calls.csv.gz"}, NOW) == f"calls_{STAMP}.csv.gz"


@pytest.mark.parametrize("name", ["README", ".env"])
def test_names_without_an_extension_and_dot_files_get_the_stamp_at_the_end(name: str) -> None:
    assert archived_name(name, {name}, NOW) == f"{name}_{STAMP}"


def test_taken_may_be_a_question_to_the_server() -> None:
    asked: list[str] = []

    def exists(candidate: str) -> bool:
        asked.append(candidate)
        return candidate == "calls.csv"

    assert archived_name("calls.csv", exists, NOW) == f"calls_{STAMP}.csv"
    assert asked == ["calls.csv", f"calls_{STAMP}.csv"]


def test_an_archive_never_overwrites_even_when_every_stamped_name_is_taken() -> None:
    with pytest.raises(FileExistsError, match=r"calls\.csv"):
        archived_name("calls.csv", lambda _candidate: True, NOW)


# --- one copy of each rule -------------------------------------------------------------------------


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package but naming.py, by its path relative to the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != NAMING:
            yield path.relative_to(PACKAGE.parent).as_posix(), path


def _strings(node: ast.AST) -> list[str]:
    return [
        item.value
        for item in ast.walk(node)
        if isinstance(item, ast.Constant) and isinstance(item.value, str)
    ]


def _in_flight_copies(tree: ast.AST) -> list[str]:
    """What in a module's syntax tree looks like its own in-flight rule: a collection literal or
    an `endswith(...)` holding an in-flight suffix, a name or function called *in_flight*
    (other than the imported one), or a suffix only upload clients use."""
    suffixes = {suffix.lower() for suffix in IN_FLIGHT_SUFFIXES}
    only_in_flight = suffixes - {".part", ".tmp"}  # `.tmp` is also our own temporary files' name
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            hits = [s for s in _strings(node) if s.lower() in suffixes]
            if hits:
                found.append(f"line {line}: a collection of in-flight suffixes {hits}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "endswith"
            and any(s.lower() in suffixes for arg in node.args for s in _strings(arg))
        ):
            found.append(f"line {line}: endswith() of an in-flight suffix")
        elif isinstance(node, ast.FunctionDef) and "in_flight" in node.name.lower():
            found.append(f"line {line}: its own function {node.name}()")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.upper() == "IN_FLIGHT_SUFFIXES":
                    found.append(f"line {line}: its own {target.id}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.lower() in only_in_flight
        ):
            found.append(f"line {line}: the in-flight suffix {node.value!r}")
    return found


def test_the_guard_recognises_a_copy_of_the_in_flight_rule() -> None:
    """The drift guard below would catch each way a transport has grown its own copy."""
    copies = [
        'IN_FLIGHT_SUFFIXES = (".part", ".tmp", ".filepart")',
        'def done(name):\n    return not name.lower().endswith((".part", ".tmp"))',
        "def _is_in_flight(name):\n    return False",
        'SKIP = [".crdownload"]',
    ]
    for source in copies:
        assert _in_flight_copies(ast.parse(source)), source
    assert not _in_flight_copies(
        ast.parse('from connectbatch.transfer.naming import is_in_flight\ntmp = name + ".tmp"')
    )


def test_no_module_but_naming_has_its_own_in_flight_suffixes() -> None:
    copies = {
        module: found
        for module, path in _modules()
        if (found := _in_flight_copies(ast.parse(path.read_text(), filename=str(path))))
    }
    assert copies == {}, "use connectbatch.transfer.naming.is_in_flight / IN_FLIGHT_SUFFIXES instead"


def test_the_in_flight_rule_lives_in_naming() -> None:
    assert '".filepart"' in NAMING.read_text()
    assert naming.IN_FLIGHT_SUFFIXES is IN_FLIGHT_SUFFIXES


def test_no_module_but_naming_has_its_own_archive_stamp() -> None:
    copies = [module for module, path in _modules() if ARCHIVE_STAMP in path.read_text()]
    assert copies == [], "use connectbatch.transfer.naming.archived_name instead"


def test_the_archive_stamp_lives_in_naming() -> None:
    assert ARCHIVE_STAMP in NAMING.read_text()


# --- compressed files match by their inner name (issue 11, defect 10) -------------------------------


@pytest.mark.parametrize(
    ("name", "pattern", "inner", "expected"),
    [
        ("calls_1.csv.zip", "calls_*.csv", None, True),  # the outer name minus .zip
        ("calls_1.csv.gz", "calls_*.csv", None, True),  # the outer name minus .gz
        ("calls_1.csv.GZ", "calls_*.csv", None, True),
        ("calls_1.csv.zip", "calls_*.csv.zip", None, True),  # the name itself still counts
        ("march.zip", "calls_*.csv", "calls_2.csv", True),  # the ZIP's single member
        ("march.zip", "calls_*.csv", "exports/calls_2.csv", True),  # a member in a folder
        ("march.zip", "calls_*.csv", "notes.txt", False),
        ("march.zip", "calls_*.csv", None, False),
        ("calls_1.csv.bz2", "calls_*.csv", None, False),  # the parser does not unpack bz2
        ("notes.txt", "calls_*.csv", "calls_1.csv", False),  # `inner` only for an archive
        ("calls_1.csv.zip.part", "calls_*.csv", None, False),  # still being written
        ("march.zip", "calls_*.csv", "calls_2.csv.part", False),
    ],
)
def test_a_compressed_file_matches_by_its_inner_name_too(
    name: str, pattern: str, inner: str | None, expected: bool
) -> None:
    assert matches(name, pattern, inner=inner) is expected


# --- names as partners' servers write them ---------------------------------------------------------


def test_a_decomposed_name_matches_a_composed_pattern_and_back() -> None:
    import unicodedata

    composed, decomposed = (unicodedata.normalize(form, "Ventes_café_1.csv") for form in ("NFC", "NFD"))
    assert composed != decomposed
    assert matches(decomposed, "Ventes_café_*.csv")  # a Mac upload, a pattern typed elsewhere
    assert matches(composed, unicodedata.normalize("NFD", "Ventes_caf?_*.csv"))
    assert matches(decomposed + ".gz", "Ventes_café_*.csv")


def test_a_name_not_in_utf8_is_read_as_latin1_and_utf8_as_utf8() -> None:
    assert naming.readable_name(b"Calls_caf\xe9.csv") == "Calls_café.csv"
    assert naming.readable_name("Calls_café.csv".encode()) == "Calls_café.csv"
