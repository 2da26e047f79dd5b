"""The national center's API contract, shared by everything that talks to it.

``link`` (the ``national.link`` config section), ``client`` (signed HTTPS
requests) and ``vocabulary`` (severities, datasets). The collector's national
component and the ``national`` output both build on these; neither imports the
other. Request signing itself is ``canhgac.signing`` (the mock center verifies it).
"""
