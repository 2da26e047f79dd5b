"""HTTP output: ship NDJSON batches to a canhgac collector (``POST /v1/events``).

Used by the agent (agent -> collector hop). See ``service.HttpOutput`` for how
each status code maps onto the delivery loop's retry / dead-letter outcomes.
"""

from shipper.outputs.http.config import HttpOutputConfig
from shipper.outputs.http.service import HttpOutput

__all__ = ["HttpOutput", "HttpOutputConfig"]
