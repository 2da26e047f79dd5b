"""The canhgac agent: probes on a data-center server, shipped durably to the collector."""
