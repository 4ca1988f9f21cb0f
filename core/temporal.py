"""Connecting to Temporal and making sure the platform's search attributes exist."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from workflows.contracts.search_attributes import ALL_SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)

_INDEXED_TYPE = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


def type_name(key: SearchAttributeKey) -> str:
    """The type as the Temporal CLI spells it (``Keyword``, ``KeywordList``, ``Int``...)."""
    return {
        "TEXT": "Text",
        "KEYWORD": "Keyword",
        "INT": "Int",
        "FLOAT": "Double",
        "BOOL": "Bool",
        "DATETIME": "Datetime",
        "KEYWORD_LIST": "KeywordList",
    }[key.indexed_value_type.name]


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL_SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        lazy=lazy,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register any of the platform's custom search attributes that the namespace lacks.

    Returns the names added. Servers that refuse (e.g. a managed namespace where attributes are
    set up out of band) get a warning, not a crash: workflows still run, they are just harder
    to find in the UI.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=10)
    )
    missing = {
        key.name: _INDEXED_TYPE[type_name(key)]
        for key in ALL_SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing),
            timeout=timedelta(seconds=10),
        )
    except RPCError as error:
        if error.status == RPCStatusCode.ALREADY_EXISTS:
            return []
        log.warning(
            "could not register search attributes",
            extra={"missing": sorted(missing), "error": str(error)},
        )
        return []
    log.info("registered search attributes", extra={"added": sorted(missing)})
    return sorted(missing)
