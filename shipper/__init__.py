"""Store-and-forward delivery: the durable queue and the outputs that drain it.

Used on both hops: agent -> collector, and collector -> each of its outputs.
"""
