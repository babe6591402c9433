"""Blocklist subscriber: the connector a utility or bank runs to refuse supply or loans.

It keeps a local SQLite replica of the blocklist topics of the measures it enforces,
answers checks from it in memory, says "stale" rather than "clear" once the builder's
heartbeats are older than its freshness bound, and acknowledges each block it applies.
Supply is refused at the site of the illegal project or premises only, so a check of a
supply measure names the site; a loan check answers for the subject wherever it asks.

    from connectors.subscriber import Subscriber, SubscriberConfig
    with Subscriber(config) as subscriber:
        # Blocked | Clear | Stale, at the site a unit code (or parcel code, address) names
        result = subscriber.check("refuse_power_supply", raw_id, unit_code)
"""

from connectors.subscriber.api import ConnectorApp
from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.errors import (
    BrokerError,
    ConfigError,
    ConnectorError,
    InvalidInput,
    ReplicaError,
)
from connectors.subscriber.freshness import Freshness, is_stale, watermark
from connectors.subscriber.index import BlockIndex
from connectors.subscriber.records import RawRecord
from connectors.subscriber.results import BlockCase, Blocked, CheckResult, Clear, Stale
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.view import BlocklistView

__all__ = [
    "BlockCase",
    "BlockIndex",
    "Blocked",
    "BlocklistView",
    "BrokerError",
    "CheckResult",
    "Clear",
    "ConfigError",
    "ConnectorApp",
    "ConnectorError",
    "Freshness",
    "InvalidInput",
    "RawRecord",
    "ReplicaError",
    "Stale",
    "SubjectIds",
    "Subscriber",
    "SubscriberConfig",
    "is_stale",
    "watermark",
]
