"""The rule kinds: one module each (sigma, threshold, sequence, absence)."""
