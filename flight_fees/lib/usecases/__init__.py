"""Use cases: one function per thing a user asks the system to do.

Every entry point — the Dagster assets, sensors and schedules (``flight_fees/defs``), the CLI
(``flight_fees/cli``) and the HTTP endpoints (``flight_fees/http``) — calls the same function
here and only translates its arguments and its result, so every entry point gives the same
answer. A use case composes the domain modules below it (reads, pure computation, writes);
it imports no Dagster.

- :mod:`.invoicing` — issue the invoices due on a day (tariff thresholds, documents);
  customer codes to ids.
- :mod:`.processing` — fetch a day's tracks under the queue and circuit-breaker policy, bill
  a batch and record it, the state of a billed day, the known day of each flight.
- :mod:`.queue_tick` — claim queued flights and plan one run per UTC day (the queue sensor
  and ``flight-fees demo``).
"""
