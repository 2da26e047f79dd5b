"""Outputs: one folder each (config, encoder, service, health), knowing only the kernel."""
