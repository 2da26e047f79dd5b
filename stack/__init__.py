"""The local stack: collector, agent and mock national center as processes (`canhgac up`)."""
