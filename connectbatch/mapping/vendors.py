"""Column names known call-tracking vendors export, and the column of ours each one feeds.

Built from the vendors' public documentation (cited per block). A name listed with target
None is one we know and deliberately ignore (e.g. Invoca's own campaign id, where the
network's id is the one we key on), so the engine does not guess a fuzzy match for it.
Names are compared normalised (`normalise`: lower case, letters and digits only).
"""

from __future__ import annotations

import re

# (vendor, partner column name, our column or None)
_CALL_CONVERSIONS: tuple[tuple[str, str, str | None], ...] = (
    # Invoca Transactions API advertiser columns: github.com/Invoca/developer-docs,
    # source/api_documentation/transactions_api/_advertiser_param_table.rst (7ee0de2).
    ("Invoca", "complete_call_id", "CallSessionId"),
    ("Invoca", "transaction_id", "VendorEventId"),
    ("Invoca", "calling_phone_number", "CallerId"),
    ("Invoca", "destination_phone_number", "CalledPhoneNumber"),
    # start_time_utc is milliseconds since 1970 (its docs), start_time_local a local time
    # with a GMT offset; start_time_xml is an ISO 8601 (xs:dateTime) time with its offset
    ("Invoca", "start_time_xml", "EventDate"),
    ("Invoca", "start_time_utc", None),
    ("Invoca", "start_time_local", None),
    ("Invoca", "start_time_network_timezone", None),
    ("Invoca", "start_time_network_timezone_xml", None),
    ("Invoca", "duration", "CallDuration"),
    ("Invoca", "connect_duration", "TalkDuration"),
    ("Invoca", "ivr_duration", "IvrDuration"),
    ("Invoca", "advertiser_campaign_id_from_network", "CampaignId"),
    ("Invoca", "advertiser_campaign_id", None),
    ("Invoca", "affiliate_id_from_network", "MediaId"),
    ("Invoca", "affiliate_id", None),
    ("Invoca", "advertiser_promo_line_description", "PromoNumberDescription"),
    ("Invoca", "call_source_description", "TrafficSource"),
    ("Invoca", "verified_zip", "Zip"),
    ("Invoca", "repeat_calling_phone_number", "RepeatCaller"),
    ("Invoca", "mobile", "PhoneType"),
    ("Invoca", "recording", "CallRecording"),
    ("Invoca", "recording_download_url", None),
    ("Invoca", "opt_in_SMS", "OptInSms"),
    ("Invoca", "keypress_1", "Key1"),
    ("Invoca", "keypress_2", "Key2"),
    ("Invoca", "keypress_3", "Key3"),
    ("Invoca", "keypress_4", "Key4"),
    ("Invoca", "virtual_line_id", None),
    ("Invoca", "advertiser_campaign_country", None),
    ("Invoca", "original_order_id", None),
    # Google Ads "Conversions from calls" import: support.google.com/google-ads/answer/7014069
    # and developers.google.com/google-ads/api/reference/rpc/latest/CallConversion.
    ("Google Ads", "Caller's Phone Number", "CallerId"),
    ("Google Ads", "Conversion Time", "EventDate"),
    ("Google Ads", "Call Start Time", None),
    ("Google Ads", "Conversion Name", "DispositionName"),
    ("Google Ads", "Conversion Value", "SaleAmount"),
    ("Google Ads", "Conversion Currency", None),
    # CallRail API v3 call object: apidocs.callrail.com (#call-object).
    ("CallRail", "id", "CallSessionId"),
    ("CallRail", "customer_phone_number", "CallerId"),
    ("CallRail", "formatted_customer_phone_number", None),
    ("CallRail", "tracking_phone_number", "CalledPhoneNumber"),
    ("CallRail", "business_phone_number", None),
    ("CallRail", "start_time", "EventDate"),
    ("CallRail", "customer_city", "City"),
    ("CallRail", "customer_state", "Region"),
    ("CallRail", "customer_country", "Country"),
    ("CallRail", "source", "TrafficSource"),
    ("CallRail", "value", "SaleAmount"),
    # Google Ads API CallView (call_view report fields): developers.google.com/google-ads/api/
    # reference/rpc/latest/CallView. call_status (RECEIVED/MISSED) is not our CallStatus vocabulary.
    ("Google Ads API", "call_duration_seconds", "CallDuration"),
    ("Google Ads API", "start_call_date_time", "EventDate"),
    ("Google Ads API", "end_call_date_time", None),
    ("Google Ads API", "caller_country_code", "CallerPhoneNumberCountry"),
    ("Google Ads API", "caller_area_code", None),
    ("Google Ads API", "call_status", None),
    # Ringba "Call Details Report Column Dictionary": support.ringba.com (Reporting).
    ("Ringba", "Inbound Call ID", "CallSessionId"),
    ("Ringba", "inboundCallId", "CallSessionId"),
    ("Ringba", "Call Date", "EventDate"),
    ("Ringba", "callDt", "EventDate"),
    ("Ringba", "Caller ID", "CallerId"),
    ("Ringba", "inboundPhoneNumber", "CallerId"),
    ("Ringba", "Dialed #", "CalledPhoneNumber"),
    ("Ringba", "Number", "CalledPhoneNumber"),
    ("Ringba", "Target Number", None),
    ("Ringba", "Call Length In Seconds", "CallDuration"),
    ("Ringba", "callLengthInSeconds", "CallDuration"),
    ("Ringba", "Connected Call Length In Seconds", "TalkDuration"),
    ("Ringba", "connectedCallLengthInSeconds", "TalkDuration"),
    ("Ringba", "Time To Call", None),
    ("Ringba", "Recording Url", "CallRecording"),
    ("Ringba", "recordingUrl", "CallRecording"),
    ("Ringba", "Conversion Amount", "SaleAmount"),
    ("Ringba", "Revenue", None),
    ("Ringba", "Campaign", None),
    ("Ringba", "campaignName", None),
    ("Ringba", "Publisher", None),
    ("Ringba", "publisherName", None),
    ("Ringba", "Number Pool", None),
    ("Ringba", "Payout", None),
    # CallTrackingMetrics API, calls endpoint: postman.calltrackingmetrics.com / calltrackingmetrics.com/api.
    ("CallTrackingMetrics", "sid", "CallSessionId"),
    ("CallTrackingMetrics", "caller_number", "CallerId"),
    ("CallTrackingMetrics", "tracking_number", "CalledPhoneNumber"),
    ("CallTrackingMetrics", "receiving_number", None),
    ("CallTrackingMetrics", "name", None),
    ("CallTrackingMetrics", "business_number", None),
    ("CallTrackingMetrics", "called_at", "EventDate"),
    ("CallTrackingMetrics", "unix_time", None),
    ("CallTrackingMetrics", "talk_time", "TalkDuration"),
    ("CallTrackingMetrics", "ring_time", None),
    ("CallTrackingMetrics", "state", "Region"),
    ("CallTrackingMetrics", "postal_code", "Zip"),
    ("CallTrackingMetrics", "audio", "CallRecording"),
    ("CallTrackingMetrics", "tracking_label", "PromoNumberDescription"),
    # Marchex Call Analytics call log export (marchex.com support: "Call Log export fields").
    ("Marchex", "Call ID", "CallSessionId"),
    ("Marchex", "Call Start", "EventDate"),
    ("Marchex", "Caller Number", "CallerId"),
    ("Marchex", "Tracking Number", "CalledPhoneNumber"),
    ("Marchex", "Forward Number", None),
    ("Marchex", "Call Duration", "CallDuration"),
    ("Marchex", "Talk Time", "TalkDuration"),
    ("Marchex", "Caller City", "City"),
    ("Marchex", "Caller State", "Region"),
    ("Marchex", "Caller Zip", "Zip"),
    ("Marchex", "Disposition", None),
    # Retreaver calls API / CSV export (retreaver.com/api: calls).
    ("Retreaver", "uuid", "CallSessionId"),
    ("Retreaver", "Call UUID", "CallSessionId"),
    ("Retreaver", "caller", "CallerId"),
    ("Retreaver", "dialed_number", "CalledPhoneNumber"),
    ("Retreaver", "Received At", "EventDate"),
    ("Retreaver", "created_at", "EventDate"),
    ("Retreaver", "connected_duration", "TalkDuration"),
    ("Retreaver", "Connected Duration", "TalkDuration"),
    ("Retreaver", "Billable Duration", None),
    ("Retreaver", "campaign_name", None),
)

# Common e-commerce / affiliate export names (Shopify order export, GA4 purchase events).
_CONVERSIONS: tuple[tuple[str, str, str | None], ...] = (
    ("common", "order_id", "OrderId"),
    ("common", "order_number", "OrderId"),
    ("common", "transaction_id", "OrderId"),
    ("common", "order_total", "Amount"),
    ("common", "revenue", "Amount"),
    ("common", "sale_amount", "Amount"),
    ("common", "currency", "CurrencyCode"),
    ("common", "conversion_time", "EventDate"),
    ("common", "created_at", "EventDate"),
    ("common", "irclickid", "ClickId"),
    ("common", "click_id", "ClickId"),
    ("common", "coupon", "PromoCode"),
    ("common", "discount_code", "PromoCode"),
    ("common", "qty", "Quantity"),
)

_CLICKS: tuple[tuple[str, str, str | None], ...] = (
    ("common", "irclickid", "ClickId"),
    ("common", "click_time", "EventDate"),
    ("common", "landing_page", "LandingPageUrl"),
    ("common", "referrer", "ReferringUrl"),
    ("common", "ip", "IpAddress"),
)

# Product feeds (data-types audit: a Merchant Center header was left unmapped, and Shopify's
# "Option1 Name" was taken for our Name).
_PRODUCT_CATALOGS: tuple[tuple[str, str, str | None], ...] = (
    # Google Merchant Center product data specification: support.google.com/merchants/answer/7052112.
    # `price` is the regular price; a `sale_price`, when there is one, is what the item costs
    # now: one column cannot feed ours both ways, so the sale price is left to the analyst.
    ("Google Merchant Center", "id", "CatalogItemId"),
    ("Google Merchant Center", "title", "Name"),
    ("Google Merchant Center", "description", "Description"),
    ("Google Merchant Center", "link", "Url"),
    ("Google Merchant Center", "image_link", "ImageUrl"),
    ("Google Merchant Center", "additional_image_link", None),
    ("Google Merchant Center", "availability", "StockAvailability"),
    ("Google Merchant Center", "price", "CurrentPrice"),
    ("Google Merchant Center", "sale_price", None),
    ("Google Merchant Center", "sale_price_effective_date", None),
    ("Google Merchant Center", "brand", "Manufacturer"),
    ("Google Merchant Center", "gtin", "Gtin"),
    ("Google Merchant Center", "mpn", "Mpn"),
    ("Google Merchant Center", "condition", "Condition"),
    ("Google Merchant Center", "google_product_category", "Category"),
    ("Google Merchant Center", "product_type", None),
    ("Google Merchant Center", "item_group_id", None),
    ("Google Merchant Center", "shipping", None),  # "US:CA:Overnight:16.00 USD": no one amount
    # Shopify product CSV: help.shopify.com/en/manual/products/import-export/using-csv. A row
    # is a variant (its SKU the item); the export has no product URL (the Handle is part of it).
    ("Shopify", "Variant SKU", "CatalogItemId"),
    ("Shopify", "Handle", None),
    ("Shopify", "Title", "Name"),
    ("Shopify", "Body (HTML)", "Description"),
    ("Shopify", "Vendor", "Manufacturer"),
    ("Shopify", "Product Category", "Category"),
    ("Shopify", "Type", None),
    ("Shopify", "Tags", None),
    ("Shopify", "Published", None),
    ("Shopify", "Option1 Name", None),
    ("Shopify", "Option1 Value", None),
    ("Shopify", "Option2 Name", None),
    ("Shopify", "Option2 Value", None),
    ("Shopify", "Option3 Name", None),
    ("Shopify", "Option3 Value", None),
    ("Shopify", "Variant Price", "CurrentPrice"),
    ("Shopify", "Variant Compare At Price", "OriginalPrice"),
    ("Shopify", "Variant Barcode", "Gtin"),
    ("Shopify", "Variant Grams", None),
    ("Shopify", "Variant Inventory Qty", None),
    ("Shopify", "Image Src", "ImageUrl"),
    ("Shopify", "Image Alt Text", None),
    ("Shopify", "SEO Title", None),
    ("Shopify", "SEO Description", None),
    ("Shopify", "Status", None),
)

_BY_TYPE = {
    "call_conversions": _CALL_CONVERSIONS,
    "conversions": _CONVERSIONS,
    "clicks": _CLICKS,
    "product_catalogs": _PRODUCT_CATALOGS,
}

# Names so common that another vendor's column of the same name may mean something else
# (CallTrackingMetrics' `id` is its numeric id, its `sid` the call's): weaker evidence.
GENERIC = frozenset({"id", "number", "source", "value", "caller", "state", "duration", "audio", "mobile"})

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(name: str) -> str:
    """Lower case, letters and digits only: 'Caller's Phone Number' -> 'callersphonenumber'.
    A name that is already that costs no regular expression (a header of 400,000 names is
    normalised whole when required columns are missing: issue 13)."""
    lowered = name.strip().lower()
    if lowered.isascii() and lowered.isalnum():
        return lowered
    return _NOT_ALNUM.sub("", lowered)


def known_names(data_type: str) -> dict[str, tuple[str | None, str]]:
    """normalised vendor name -> (our column or None, vendor), for one data type."""
    out: dict[str, tuple[str | None, str]] = {}
    for vendor, name, target in _BY_TYPE.get(data_type, ()):
        out.setdefault(normalise(name), (target, vendor))
    return out


def entries(data_type: str) -> tuple[tuple[str, str, str | None], ...]:
    """The dictionary as written (vendor, name, target): for the docs and the bench."""
    return _BY_TYPE.get(data_type, ())
