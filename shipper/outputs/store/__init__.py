"""The embedded event store: SQLite (WAL), the collector's default output.

It keeps the stack useful with no Elasticsearch at all (`canhgac up`), and is
what `canhgac query` reads by default. Documents are stored whole (the ECS JSON)
with a few indexed columns; ``event.id`` is the primary key, so a redelivered
batch stores nothing twice.
"""

from shipper.outputs.store.service import StoreOutput, build, open_store

__all__ = ["StoreOutput", "build", "open_store"]
