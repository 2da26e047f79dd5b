"""Table layout of events.db, shared by the writer and the search backend."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
    id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,          -- @timestamp, epoch milliseconds
    dataset TEXT,
    kind TEXT,
    system_id TEXT,
    unit TEXT,
    doc TEXT NOT NULL             -- the ECS event as JSON
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_dataset_ts ON events(dataset, ts);
CREATE INDEX IF NOT EXISTS events_system_ts ON events(system_id, ts);
"""
