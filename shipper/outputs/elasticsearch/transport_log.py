"""elastic_transport's retry warnings as one line each, instead of a traceback.

When a request to a node fails and the transport tries again (another host, or
the same one), ``elastic_transport`` logs ``Retrying request after failure
(attempt N of M)`` with the whole traceback of the connection error: a dozen
lines per attempt while a node is down. :class:`OneLineRetries` rewrites that
record to one line that keeps what matters, e.g.::

    Retrying request after failure (attempt 0 of 2) on node http://es1:9200:
    ConnectionError: Connection error caused by: ClientConnectorError(...)

It changes no logger's level and drops no record: whoever configures logging
still decides what is shown (``canhgac.logs.setup`` shows WARNING and above
from the transport). The node comes from the node pool's warning that the
transport logs, synchronously, just before the retry warning ("Node <...> has
failed for N times in a row").
"""

from __future__ import annotations

import logging

TRANSPORT_LOGGER = "elastic_transport.transport"
NODE_POOL_LOGGER = "elastic_transport.node_pool"


class OneLineRetries(logging.Filter):
    """Folds the exception of a transport warning into its message (see module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._last_failed_node: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        # a filter that raises would break the request being logged: never let it
        try:
            self._rewrite(record)
        except Exception:  # keep the record as it came
            pass
        return True

    def _rewrite(self, record: logging.LogRecord) -> None:
        if record.name == NODE_POOL_LOGGER:
            if isinstance(record.msg, str) and record.msg.startswith("Node %r has failed") \
                    and isinstance(record.args, tuple) and record.args:
                node = record.args[0]
                self._last_failed_node = str(getattr(node, "base_url", node))
            return
        if record.exc_info and record.levelno < logging.ERROR:
            exc = record.exc_info[1]
            node = self._last_failed_node
            self._last_failed_node = None
            where = f" on node {node}" if node else ""
            message = record.getMessage()
            record.msg = "%s%s: %s: %s"
            record.args = (message, where, type(exc).__name__, exc)
            record.exc_info = None
            record.exc_text = None


_FILTER = OneLineRetries()


def install() -> None:
    """Add the filter to the transport's loggers; idempotent. Changes no level."""
    for name in (TRANSPORT_LOGGER, NODE_POOL_LOGGER):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
