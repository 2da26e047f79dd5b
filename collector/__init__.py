"""The canhgac collector: authenticates agents, normalises, enriches, detects, stores, shares."""
