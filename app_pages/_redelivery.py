"""The connection's answer to records sent again: hold for review or supersede, and for
product catalogs whether each file is the full catalog (snapshot) or updates. Shared by the
wizard and the connection's Edit (through `_forms.run_settings_form`)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages._forms import FieldErrors, Keys, seed
from connectbatch.models import CatalogMode, Connection, Redelivery

REDELIVERY_LABELS = {
    Redelivery.NEW_KEYS_ONLY: "Hold the file for review (new records only)",
    Redelivery.SUPERSEDE: "Replace the stored records and their pending actions",
}
CATALOG_MODE_LABELS = {
    CatalogMode.UPDATES: "Updates: only the items listed change",
    CatalogMode.SNAPSHOT: "Full snapshot: items left out are marked removed",
}


def redelivery_form(keys: Keys, c: Connection, errors: FieldErrors) -> dict[str, Any]:
    """What a file repeating records already loaded does; for catalogs, snapshot or updates."""
    entered: dict[str, Any] = {}
    if c.data_type == "product_catalogs":
        modes = list(CatalogMode)
        seed(keys("catalog_mode"), CatalogMode(c.catalog_mode), modes)
        entered["catalog_mode"] = st.selectbox(
            "Each catalog file is", modes, key=keys("catalog_mode"), format_func=CATALOG_MODE_LABELS.get
        )
        errors("catalog_mode")
    elif c.data_type != "action_modifications":
        options = list(Redelivery)
        seed(keys("redelivery"), Redelivery(c.redelivery), options)
        entered["redelivery"] = st.selectbox(
            "Records sent again (same key)",
            options,
            key=keys("redelivery"),
            format_func=REDELIVERY_LABELS.get,
            help="A corrected file can replace records only while their actions are still pending.",
        )
        errors("redelivery")
    return entered
