"""Top-level commands that span agent and collector (up, query, version)."""
