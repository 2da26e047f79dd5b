"""The one error a query can raise: what is wrong and where (1-based position)."""

from __future__ import annotations

from canhgac.errors import UserError


class QueryError(UserError):
    """An invalid query. ``position`` is the 1-based character index of the problem.

    A UserError so the CLI exits 2 with one line; the API answers 400 with the
    same message and position.
    """

    def __init__(self, message: str, position: int, query: str = "") -> None:
        self.message = message
        self.position = position
        self.query = query
        super().__init__(f"invalid query at position {position}: {message}")

    def caret(self) -> str:
        """The query with a ``^`` under the problem, for terminals."""
        if not self.query:
            return ""
        return f"  {self.query}\n  {' ' * (self.position - 1)}^"

    def as_json(self) -> dict[str, object]:
        return {"error": str(self), "message": self.message, "position": self.position}
