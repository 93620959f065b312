"""The schema registry against the partner-facing call-conversion spec and the issue's rules."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from helpers.shared import shared_path

from connectbatch import schemas
from connectbatch.errors import UnknownDataTypeError
from connectbatch.parser.api import parse_bytes
from connectbatch.schemas import Kind, codes

SPEC = "seeds/002_3987687d451893b2.txt"  # the partner-facing call-conversion spec
CC = schemas.get("call_conversions")


def spec_lines() -> list[str]:
    text = shared_path(SPEC).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines()]


def spec_columns() -> list[tuple[str, str, bool]]:
    """(name, spec type, required) for every column: a name line, a type line, then
    Required/Optional."""
    lines = spec_lines()
    return [
        (lines[i], lines[i + 1], lines[i + 2] == "Required")
        for i in range(len(lines) - 2)
        if lines[i + 2] in ("Required", "Optional")
    ]


def spec_call_statuses() -> list[str]:
    lines = spec_lines()
    start = next(i for i, line in enumerate(lines) if line.endswith("Valid values are:")) + 1
    values = []
    for line in lines[start:]:
        if not re.fullmatch(r"[A-Z_]+", line):
            break
        values.append(line)
    return values


def test_call_conversions_has_exactly_the_51_spec_columns_in_spec_order() -> None:
    names = [name for name, _type, _required in spec_columns()]
    assert len(names) == 51
    assert CC.column_names == names


def test_required_columns_are_exactly_the_ones_the_spec_requires() -> None:
    required = [name for name, _type, is_required in spec_columns() if is_required]
    assert CC.required_columns == required
    assert len(required) == 10


def test_spec_types_map_to_parser_kinds() -> None:
    expected = {
        "Integer": Kind.INTEGER,
        "datetime (ISO 8601)": Kind.TIMESTAMP,
        "Currency": Kind.DECIMAL,
    }
    seconds = {"CallDuration", "TalkDuration", "IvrDuration"}  # "String" in the spec
    coded = {"CallStatus": Kind.ENUM, "CallerPhoneNumberCountry": Kind.COUNTRY}
    coded["CalledPhoneNumberCountry"] = Kind.COUNTRY
    for name, spec_type, _required in spec_columns():
        kind = CC.column(name).kind
        if name == "Zip":
            assert kind is Kind.STRING  # an Integer in the spec, kept as text for leading zeros
        elif name in seconds:
            assert kind is Kind.SECONDS
        elif name in coded:
            assert kind is coded[name]
        else:
            assert kind is expected.get(spec_type, Kind.STRING), name


def test_call_status_allows_the_8_spec_values_and_defaults_to_answer() -> None:
    status = CC.column("CallStatus")
    assert spec_call_statuses() == list(status.allowed)
    assert len(status.allowed) == 8
    assert (status.default, status.required) == ("ANSWER", False)


@pytest.mark.parametrize("name", ["CallerPhoneNumberCountry", "CalledPhoneNumberCountry"])
def test_phone_number_countries_default_to_us(name: str) -> None:
    column = CC.column(name)
    assert (column.kind, column.default, column.required) == (Kind.COUNTRY, "US", False)
    assert "US" in column.choices and "UK" not in column.choices


def test_code_lists_are_unique_upper_case_ascii() -> None:
    assert len(set(codes.COUNTRIES)) == len(codes.COUNTRIES) == 249
    assert all(re.fullmatch(r"[A-Z]{2}", c) for c in codes.COUNTRIES)
    assert len(set(codes.CURRENCIES)) == len(codes.CURRENCIES)
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in codes.CURRENCIES)
    assert set(codes.COUNTRY_HINTS).isdisjoint(codes.COUNTRIES)


def test_registry_offers_every_data_type_of_the_product() -> None:
    assert set(schemas.REGISTRY) == {
        "call_conversions",
        "conversions",
        "action_modifications",
        "clicks",
        "product_catalogs",
    }


def test_unknown_data_type_names_the_valid_ones() -> None:
    with pytest.raises(UnknownDataTypeError) as err:
        schemas.get("calls")
    assert isinstance(err.value, KeyError)
    assert str(err.value) == (
        "unknown data type 'calls'; expected one of: call_conversions, conversions, "
        "action_modifications, clicks, product_catalogs"
    )


@pytest.mark.parametrize("key", sorted(schemas.REGISTRY))
def test_every_data_type_is_documented_and_consistent(key: str) -> None:
    data_type = schemas.get(key)
    names = data_type.column_names
    assert len(set(names)) == len(names), "column names are unique"
    assert all(c.description.strip() for c in data_type.columns)
    assert all(c.example for c in data_type.columns if c.required), "required columns have examples"
    assert set(data_type.key_columns) <= set(names)
    for column in data_type.columns:
        assert (column.kind is Kind.ENUM) == bool(column.allowed)
        assert column.default is None or column.kind in (Kind.ENUM, Kind.COUNTRY, Kind.CURRENCY)
        if column.default is not None:
            assert column.default in column.choices
    fields = data_type.arrow_schema()
    assert fields.names == names
    assert [f.nullable for f in fields] == [
        not c.required or c.empty_when is not None for c in data_type.columns
    ]


@pytest.mark.parametrize("key", sorted(schemas.REGISTRY))
def test_every_data_type_template_csv_parses_with_no_rejects(key: str) -> None:
    data_type = schemas.get(key)
    template = data_type.template_csv()
    assert template.splitlines()[0].split(",") == data_type.column_names
    result = parse_bytes(template.encode(), key, engine="python")
    assert (result.table.num_rows, result.rejects, result.unknown_columns) == (1, [], [])


def test_action_modifications_carry_an_action_reference_an_amount_and_a_reason() -> None:
    data_type = schemas.get("action_modifications")
    required = {c.name: c.kind for c in data_type.columns if c.required}
    assert required == {"ActionId": Kind.STRING, "Amount": Kind.DECIMAL, "Reason": Kind.STRING}
    assert "0" in data_type.column("Amount").description  # amount 0 means reversal
    data = b"ActionId,Amount,Reason\nA-1,0,Returned\nA-2,$12.50,Price match\nA-3,5,\n"
    result = parse_bytes(data, "action_modifications", engine="python")
    assert result.table.column("Amount").to_pylist() == [Decimal("0.00"), Decimal("12.50")]
    assert [(r.line, r.column) for r in result.rejects] == [(4, "Reason")]
