"""Flight attributes from several sources, with priority resolution and conflict detection.

Fields (:data:`FIELDS`): ``registration, aircraft_type, icao24, mtow_kg, operator`` (customer
code), ``callsign, origin, destination, flags``.

Sources implement :class:`AttributeSource`: a ``name`` and ``lookup(flights) -> DataFrame``
(one row per ``flight_id``, the columns of the fields the source knows, missing where unknown).
Adapters shipped here:

- :class:`ManualResolutionSource` -- values chosen by a human in :func:`resolve_conflict`
  (authoritative: always wins, never in conflict);
- :class:`AircraftTableSource` -- table ``aircraft`` (+ ``customers.code``) by registration,
  falling back to ``icao24``;
- :class:`CsvAttributeSource` -- a CSV keyed by ``flight_id`` or ``registration``;
- :class:`TrackRowsSource` -- the attribute columns of the track rows (most frequent value);
- :class:`FrameAttributeSource` -- any DataFrame keyed by ``flight_id``.

:func:`resolve_attributes` takes the sources in priority order (first = highest). Values are
normalised before comparison (:func:`normalise_value`). A disagreement on an ordinary field is
settled by priority; on a *critical* field (default ``mtow_kg`` and ``operator``) it is a
:class:`Conflict`: the flight must not be billed until a human resolves it. Conflicts are
persisted in table ``flight_conflicts`` (:func:`record_conflicts`); :func:`blocked_flight_ids`
lists flights with open conflicts; :func:`resolve_conflict` stores the chosen value, which
:class:`ManualResolutionSource` then serves.

Sources keyed by registration/icao24 need those identities, which other sources provide, so
:func:`resolve_attributes` iterates: every source is asked with the values resolved in the
previous round, until the resolved values no longer change (two or three rounds). Reading
adapters sit behind a :class:`TTLCache` so repeated rounds and ticks do not re-read the
database or the file.
"""

from __future__ import annotations

from flight_fees.lib.charging.attributes.cache import (
    TTLCache,
)
from flight_fees.lib.charging.attributes.conflicts import (
    blocked_flight_ids,
    open_conflicts,
    record_conflicts,
    resolve_conflict,
)
from flight_fees.lib.charging.attributes.normalise import (
    DEFAULT_CRITICAL_FIELDS,
    FIELDS,
    MTOW_TOLERANCE_KG,
    AttributeSourceError,
    ConflictNotFound,
    normalise_value,
)
from flight_fees.lib.charging.attributes.resolution import (
    Conflict,
    ResolvedAttributes,
    resolve_attributes,
)
from flight_fees.lib.charging.attributes.sources import (
    AircraftTableSource,
    AttributeSource,
    CsvAttributeSource,
    FrameAttributeSource,
    ManualResolutionSource,
    TrackRowsSource,
    default_attribute_sources,
    flight_dates_of,
)

__all__ = [
    "AircraftTableSource",
    "AttributeSource",
    "AttributeSourceError",
    "Conflict",
    "ConflictNotFound",
    "CsvAttributeSource",
    "DEFAULT_CRITICAL_FIELDS",
    "FIELDS",
    "FrameAttributeSource",
    "MTOW_TOLERANCE_KG",
    "ManualResolutionSource",
    "ResolvedAttributes",
    "TTLCache",
    "TrackRowsSource",
    "blocked_flight_ids",
    "default_attribute_sources",
    "flight_dates_of",
    "normalise_value",
    "open_conflicts",
    "record_conflicts",
    "resolve_attributes",
    "resolve_conflict",
]
