"""canhgac: security monitoring agent and collector for the 4-layer protection model."""

__version__ = "0.2.0"
