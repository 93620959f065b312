"""The schema registry: every data type ConnectBatch accepts, column by column.

One source of truth. The parser (header mapping, typing, defaults), the DuckDB DDL, the
great-expectations suites, the UI's column documentation and the template CSV download are
all derived from these definitions, so a column added here shows up everywhere at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa

from connectbatch.errors import UnknownDataTypeError
from connectbatch.schemas.codes import COUNTRIES, CURRENCIES


class Kind(StrEnum):
    """How a column's text is checked and typed. Each kind has one converter in the parser."""

    STRING = "string"  # text; leading/trailing spaces, tabs and U+00A0 trimmed, blank = empty
    INTEGER = "integer"  # int64, ASCII digits with an optional sign
    SECONDS = "seconds"  # non-negative int64 seconds; 63, 63.5 (rounded), 1:03, 0:01:03 accepted
    DECIMAL = "decimal"  # currency amount, decimal128(18, 2); "1,234.50", "$12.50"
    TIMESTAMP = "timestamp"  # ISO 8601 -> timestamp[us, tz=UTC]
    ENUM = "enum"  # one of `allowed`, case-insensitive (ASCII), stored in canonical spelling
    COUNTRY = "country"  # ISO 3166-1 alpha-2, stored upper case
    CURRENCY = "currency"  # ISO 4217, stored upper case


ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.SECONDS: pa.int64(),
    Kind.DECIMAL: pa.decimal128(18, 2),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.ENUM: pa.string(),
    Kind.COUNTRY: pa.string(),
    Kind.CURRENCY: pa.string(),
}

DUCKDB_TYPES: dict[Kind, str] = {
    Kind.STRING: "VARCHAR",
    Kind.INTEGER: "BIGINT",
    Kind.SECONDS: "BIGINT",
    Kind.DECIMAL: "DECIMAL(18,2)",
    Kind.TIMESTAMP: "TIMESTAMPTZ",
    Kind.ENUM: "VARCHAR",
    Kind.COUNTRY: "VARCHAR",
    Kind.CURRENCY: "VARCHAR",
}

TYPE_LABELS: dict[Kind, str] = {
    Kind.STRING: "String",
    Kind.INTEGER: "Integer",
    Kind.SECONDS: "Duration (seconds, M:SS or H:MM:SS)",
    Kind.DECIMAL: "Currency",
    Kind.TIMESTAMP: "datetime (ISO 8601)",
    Kind.ENUM: "One of a list",
    Kind.COUNTRY: "Country (ISO 3166-1 alpha-2)",
    Kind.CURRENCY: "Currency code (ISO 4217)",
}


@dataclass(frozen=True)
class Column:
    """One column of a data type, as a partner sees it in the file spec."""

    name: str
    kind: Kind
    required: bool
    description: str
    default: str | None = None  # used when the column is absent or the cell is empty
    allowed: tuple[str, ...] = ()  # for ENUM; COUNTRY/CURRENCY take theirs from codes.py
    example: str = ""
    # INTEGER only: a negative value is rejected (a count such as Quantity); SECONDS always is
    non_negative: bool = False
    # A required column whose cell may still be empty in a row where another column holds one
    # value: (that column, its canonical value). The spec requires CallerId yet lists the
    # CallStatus UNKNOWN_CALLERID, a call whose number the tracker could not read: refusing
    # such a row lost every call from a withheld number. The column stays required in the
    # header; only the cell is excused, and the cell stays null. At most one per data type.
    empty_when: tuple[str, str] | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.kind]

    @property
    def choices(self) -> tuple[str, ...]:
        """The canonical values a coded column accepts (empty for free-form kinds)."""
        if self.kind is Kind.ENUM:
            return self.allowed
        if self.kind is Kind.COUNTRY:
            return COUNTRIES
        if self.kind is Kind.CURRENCY:
            return CURRENCIES
        return ()


@dataclass(frozen=True)
class DataType:
    """A kind of file a connection carries (call conversions, clicks, ...)."""

    key: str
    label: str
    description: str
    columns: tuple[Column, ...]
    # Columns that identify a row for the sender: echoed into results files and used to
    # detect re-sent records. The first is required; a second one, optional, tells apart
    # records that share the first (schemas.record_key).
    key_columns: tuple[str, ...] = field(default=())
    # Data types whose rows become pending actions: (amount column, event date column).
    action_columns: tuple[str, str] | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def arrow_schema(self) -> pa.Schema:
        # A required cell that may be empty (`Column.empty_when`) is null in some accepted rows.
        return pa.schema(
            [
                pa.field(c.name, c.arrow_type, nullable=not c.required or c.empty_when is not None)
                for c in self.columns
            ]
        )

    def template_csv(self, now: dt.datetime | None = None) -> str:
        """A header plus one example row: the file a partner can download and fill in.

        The example must ingest as it is whenever it is downloaded (a partner's first test is
        often the template itself), so its dates are yesterday's (of `now`, default the
        current time) at the example's time of day: a fixed date would fall out of the
        90-day validation window and get the template quarantined."""
        day = ((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) - dt.timedelta(days=1)).date()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.column_names)
        writer.writerow([_dated(c, day) for c in self.columns])
        return out.getvalue()


def _dated(column: Column, day: dt.date) -> str:
    """A column's example for the template: a date-time example moved to `day`."""
    if column.kind is not Kind.TIMESTAMP or not column.example:
        return column.example
    return day.isoformat() + column.example[10:]  # the examples are 2026-03-01T14:05:09Z


def _c(
    name: str,
    kind: Kind,
    required: bool,
    description: str,
    example: str = "",
    default: str | None = None,
    allowed: tuple[str, ...] = (),
    *,
    non_negative: bool = False,
    empty_when: tuple[str, str] | None = None,
) -> Column:
    # An integer identifier (CampaignId, MediaId, AdId, ...) is never negative: -1 is an
    # export's "none" or a sign typed by mistake, and loaded it named a campaign no one has.
    identifier = kind is Kind.INTEGER and name.endswith("Id")
    return Column(
        name, kind, required, description, default, allowed, example, non_negative or identifier, empty_when
    )


S, I, SEC, DEC, TS, EN, CTRY, CUR = (
    Kind.STRING,
    Kind.INTEGER,
    Kind.SECONDS,
    Kind.DECIMAL,
    Kind.TIMESTAMP,
    Kind.ENUM,
    Kind.COUNTRY,
    Kind.CURRENCY,
)

CALL_STATUSES = (
    "UNKNOWN_CALLERID",
    "FAILURE",
    "CONGESTION",
    "INCOMPLETE",
    "CANCEL",
    "IVR_DROPOFF",
    "NO_TRANSFER_ATTEMPT",
    "ANSWER",
)

CALL_CONVERSIONS = DataType(
    key="call_conversions",
    label="Call conversions",
    description=(
        "Phone calls reported by a brand or call-tracking vendor; each accepted row becomes a pending action."
    ),
    # A call and each conversion of it share the CallSessionId; VendorEventId tells them
    # apart (the spec: "unique for call event and unique for the conversion event").
    key_columns=("CallSessionId", "VendorEventId"),
    action_columns=("SaleAmount", "EventDate"),
    columns=(
        _c(
            "CampaignId",
            I,
            True,
            "Unique identifier for the campaign (or program) that the call conversion is associated with.",
            "1234",
        ),
        _c("MediaId", I, True, "Unique identifier for the partner or media source.", "98765"),
        _c(
            "EventDate",
            TS,
            True,
            "ISO 8601 date and time when the call conversion event occurred. Without Z or an offset it is read in the connection's time zone.",
            "2026-03-01T14:05:09Z",
        ),
        _c(
            "ActionTrackerId",
            I,
            True,
            "Unique identifier for the action tracker (event type) that's tracking the phone call.",
            "20001",
        ),
        _c("CallProvider", S, True, "The vendor or client who is sending the call event data.", "Invoca"),
        _c(
            "CallSessionId",
            S,
            True,
            "A unique session ID that the vendor or client uses to identify the call.",
            "cs-0001",
        ),
        _c(
            "CallerId",
            S,
            True,
            "The phone number of the originating call, used to match the final conversion. "
            "May be empty when CallStatus is UNKNOWN_CALLERID.",
            "+15551234567",
            empty_when=("CallStatus", "UNKNOWN_CALLERID"),
        ),
        _c(
            "CalledPhoneNumber",
            S,
            True,
            "The destination phone number or the phone number that received the call.",
            "+18005550100",
        ),
        _c("CallDuration", SEC, True, "Total duration (in seconds) of the call.", "185"),
        _c("TalkDuration", SEC, True, "Actual talk duration (in seconds) of the call.", "160"),
        _c("AdId", I, False, "Unique identifier for the ad associated with the call conversion.", "555"),
        _c(
            "CallStatus",
            EN,
            False,
            "Final outcome of the call. ANSWER when the column is absent or the cell is empty.",
            "ANSWER",
            "ANSWER",
            CALL_STATUSES,
        ),
        _c(
            "CallerPhoneNumberCountry",
            CTRY,
            False,
            "Two-letter country code (ISO 3166-1 alpha-2) of the originating phone number. US when empty.",
            "US",
            "US",
        ),
        _c(
            "CalledPhoneNumberCountry",
            CTRY,
            False,
            "Two-letter country code (ISO 3166-1 alpha-2) of the called phone number. US when empty.",
            "US",
            "US",
        ),
        _c("SubId1", S, False, "Media partner's own data point, reported back to them.", ""),
        _c("SubId2", S, False, "Media partner's own data point, reported back to them.", ""),
        _c("SubId3", S, False, "Media partner's own data point, reported back to them.", ""),
        _c(
            "ClickId",
            S,
            False,
            "Case-sensitive identifier of a referring click, used to construct a consumer journey.",
            "",
        ),
        _c(
            "Country",
            S,
            False,
            "Country of the CallerId, as identified by the call tracking vendor.",
            "United States",
        ),
        _c("City", S, False, "City of the CallerId, as identified by the call tracking vendor.", "Austin"),
        _c("Region", S, False, "Region of the CallerId, as identified by the call tracking vendor.", "TX"),
        _c(
            "Zip",
            S,
            False,
            "Zip of the CallerId, as identified by the call tracking vendor. Kept as text: leading zeros matter.",
            "02134",
        ),
        _c("RepeatCaller", S, False, "Repeat vs new call, as recorded by the call tracking vendor.", "New"),
        _c("PhoneType", S, False, "The type of phone (landline, mobile).", "mobile"),
        _c("CallRecording", S, False, "Unique URL of the call recording.", ""),
        _c("IvrDuration", SEC, False, "Duration in seconds that the call spent in the IVR tree.", "12"),
        _c("Keypresses", S, False, "List of unique key names that were pressed during the call.", ""),
        _c("Key1", S, False, "Name of the first key that was pressed.", ""),
        _c("Key2", S, False, "Name of the second key that was pressed.", ""),
        _c("Key3", S, False, "Name of the third key that was pressed.", ""),
        _c("Key4", S, False, "Name of the fourth key that was pressed.", ""),
        _c("TrafficSource", S, False, "Source of the transaction (referring media source).", ""),
        _c("OptInSms", S, False, "Whether the caller opted in to receive an SMS promotion.", ""),
        _c("UserAgent", S, False, "The user agent of the conversion generator.", ""),
        _c("DispositionName", S, False, "The conversion event name.", "Sale"),
        _c(
            "SaleAmount", DEC, False, "Sale amount, if a sale conversion: 12.50, 1,234.50 or $12.50.", "49.99"
        ),
        _c("ReferenceId", S, False, "Customer disposition code for reference.", ""),
        _c("CustomConversionEvent1Name", S, False, "Custom name for reporting on conversion events.", ""),
        _c("CustomConversionEvent2Name", S, False, "Custom name for reporting on conversion events.", ""),
        _c("CustomConversionEvent3Name", S, False, "Custom name for reporting on conversion events.", ""),
        _c("CustomConversionEvent1Value", S, False, "Custom value for reporting on conversion events.", ""),
        _c("CustomConversionEvent2Value", S, False, "Custom value for reporting on conversion events.", ""),
        _c("CustomConversionEvent3Value", S, False, "Custom value for reporting on conversion events.", ""),
        _c(
            "VendorEventId",
            S,
            False,
            "The vendor's id of this event: unique for the call event and for each conversion "
            "event of the call, which share its CallSessionId.",
            "",
        ),
        _c("PromoNumberDescription", S, False, "Describes the called phone number.", ""),
        _c("CustomCallEvent1Name", S, False, "Custom name for reporting on call events.", ""),
        _c("CustomCallEvent2Name", S, False, "Custom name for reporting on call events.", ""),
        _c("CustomCallEvent3Name", S, False, "Custom name for reporting on call events.", ""),
        _c("CustomCallEvent1Value", S, False, "Custom value for reporting on call events.", ""),
        _c("CustomCallEvent2Value", S, False, "Custom value for reporting on call events.", ""),
        _c("CustomCallEvent3Value", S, False, "Custom value for reporting on call events.", ""),
    ),
)

CONVERSIONS = DataType(
    key="conversions",
    label="Conversions",
    description="Online or offline sales and leads; each accepted row becomes a pending action.",
    key_columns=("OrderId",),
    action_columns=("Amount", "EventDate"),
    columns=(
        _c("CampaignId", I, True, "Campaign (program) the conversion belongs to.", "1234"),
        _c("ActionTrackerId", I, True, "Action tracker (event type) of the conversion.", "20002"),
        _c("EventDate", TS, True, "ISO 8601 date and time of the conversion.", "2026-03-01T14:05:09Z"),
        _c("OrderId", S, True, "The brand's unique order or lead id.", "ORD-1001"),
        _c("Amount", DEC, True, "Order amount after discounts, before tax and shipping.", "120.00"),
        _c("CurrencyCode", CUR, False, "ISO 4217 currency of the amounts. USD when empty.", "USD", "USD"),
        _c("ClickId", S, False, "Identifier of the referring click.", ""),
        _c("MediaId", I, False, "Partner credited, when the brand attributes itself.", ""),
        _c("CustomerId", S, False, "The brand's customer id (hashed if personal).", ""),
        _c("CustomerStatus", EN, False, "New or returning customer.", "New", None, ("New", "Returning")),
        _c("CustomerCountry", CTRY, False, "Customer's country (ISO 3166-1 alpha-2).", "US"),
        _c("PromoCode", S, False, "Promo code used on the order.", ""),
        _c("OrderDiscount", DEC, False, "Discount applied to the order.", "0.00"),
        _c("Quantity", I, False, "Number of items (whole, non-negative).", "1", non_negative=True),
        _c("Note", S, False, "Free text kept with the action.", ""),
    ),
)

ACTION_MODIFICATIONS = DataType(
    key="action_modifications",
    label="Action modifications",
    description=(
        "Changes to pending actions: a new amount, or amount 0 to reverse the action. Locked "
        "actions cannot change."
    ),
    key_columns=("ActionId",),
    columns=(
        _c(
            "ActionId",
            S,
            True,
            "The action to change, as shown in pending actions and results files.",
            "A-000001",
        ),
        _c("Amount", DEC, True, "The new amount; 0 reverses the action.", "0"),
        _c("Reason", S, True, "Why the action changes (returned, cancelled, fraud, ...).", "Returned"),
        _c(
            "ModificationDate",
            TS,
            False,
            "When the change happened at the brand; defaults to the time of processing. The newest "
            "change wins: an older one arriving later, or a future date, is rejected.",
            "",
        ),
    ),
)

CLICKS = DataType(
    key="clicks",
    label="Clicks",
    description="Referring clicks, used to build consumer journeys.",
    key_columns=("ClickId",),
    columns=(
        _c("ClickId", S, True, "Unique, case-sensitive click identifier.", "clk-abc123"),
        _c("CampaignId", I, True, "Campaign the click belongs to.", "1234"),
        _c("MediaId", I, True, "Partner that sent the click.", "98765"),
        _c("EventDate", TS, True, "ISO 8601 date and time of the click.", "2026-03-01T14:05:09Z"),
        _c("AdId", I, False, "Ad that was clicked.", ""),
        _c("LandingPageUrl", S, False, "URL the click landed on.", "https://example.com/"),
        _c("ReferringUrl", S, False, "Page the click came from.", ""),
        _c("IpAddress", S, False, "Client IP address (may be truncated for privacy).", ""),
        _c("UserAgent", S, False, "Client user agent.", ""),
        _c(
            "DeviceType", EN, False, "Device class.", "Mobile", None, ("Desktop", "Mobile", "Tablet", "Other")
        ),
        _c("Country", CTRY, False, "Country of the click (ISO 3166-1 alpha-2).", "US"),
        _c("SubId1", S, False, "Partner's own data point.", ""),
        _c("SubId2", S, False, "Partner's own data point.", ""),
        _c("SubId3", S, False, "Partner's own data point.", ""),
    ),
)

PRODUCT_CATALOGS = DataType(
    key="product_catalogs",
    label="Product catalogs",
    description="Products partners can promote, one row per item.",
    key_columns=("CatalogItemId",),
    columns=(
        _c("CatalogItemId", S, True, "The brand's unique item id (SKU).", "SKU-1"),
        _c("Name", S, True, "Product name.", "Blue Widget"),
        _c("Url", S, True, "Product page URL.", "https://example.com/p/1"),
        _c("CurrentPrice", DEC, True, "Current selling price.", "19.99"),
        _c("Currency", CUR, False, "ISO 4217 currency of the prices. USD when empty.", "USD", "USD"),
        _c("OriginalPrice", DEC, False, "Price before discount.", "24.99"),
        _c("ImageUrl", S, False, "Main image URL.", ""),
        _c("Description", S, False, "Product description.", ""),
        _c("Category", S, False, "Product category path.", "Home > Widgets"),
        _c("Manufacturer", S, False, "Brand or manufacturer.", ""),
        _c("Gtin", S, False, "GTIN / EAN / UPC (text: leading zeros matter).", ""),
        _c("Mpn", S, False, "Manufacturer part number.", ""),
        _c(
            "StockAvailability",
            EN,
            False,
            "Stock status.",
            "InStock",
            None,
            ("InStock", "OutOfStock", "PreOrder", "BackOrder", "Discontinued"),
        ),
        _c("Condition", EN, False, "Item condition.", "New", None, ("New", "Used", "Refurbished")),
        _c("ShippingCost", DEC, False, "Shipping cost.", ""),
    ),
)

REGISTRY: dict[str, DataType] = {
    dt.key: dt for dt in (CALL_CONVERSIONS, CONVERSIONS, ACTION_MODIFICATIONS, CLICKS, PRODUCT_CATALOGS)
}


def get(key: str) -> DataType:
    """The data type for `key`, or UnknownDataTypeError naming the valid keys."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise UnknownDataTypeError(
            f"unknown data type {key!r}; expected one of: {', '.join(REGISTRY)}"
        ) from None
