"""User-facing errors: one clear line, a non-zero exit, never a traceback.

``str(error)`` is English (logs, tests, API answers); ``error.render(lang)`` is what
a person reads at the terminal, in the language canhgac.lang chose. A problem given
as a canhgac.message.Message is rendered in that language; a plain ``str`` stays as
it is.
"""

from __future__ import annotations

from canhgac.message import Message, render

TOP_LEVEL = "(top level)"


class UserError(Exception):
    """A mistake the user can fix (bad flag, bad file, bad query). Exit code 2."""

    exit_code = 2

    def render(self, lang: str) -> str:
        if len(self.args) == 1 and isinstance(self.args[0], Message):
            return self.args[0].render(lang)
        return str(self)


class ConfigError(UserError):
    """A configuration file is wrong: names the file, the key path and the problem."""

    def __init__(self, source: str, path: str, problem: str, *, line: int | None = None,
                 subject: str = "") -> None:
        self.source = source
        self.path = path
        self.problem = problem
        self.line = line  # in the file, where known
        self.subject = subject  # what the path is about, e.g. "system cong-ttdt"
        super().__init__(self.render("en"))

    def render(self, lang: str) -> str:
        vi = lang == "vi"
        where = render(self.source, lang)
        if self.line is not None:
            where += f": {'dòng' if vi else 'line'} {self.line}"
        if self.path:
            path = "(cấp ngoài cùng)" if vi and self.path == TOP_LEVEL else render(self.path, lang)
            where += f": {path}" + (f" ({render(self.subject, lang)})" if self.subject else "")
        return f"{where}: {render(self.problem, lang)}"


class ConfigErrors(ConfigError):
    """Several problems in one file, all reported at once (a person fixes them in one go)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.source, first.path, first.problem, line=first.line,
                         subject=first.subject)

    def render(self, lang: str) -> str:
        if len(self.errors) == 1:
            return self.errors[0].render(lang)
        head = (f"{len(self.errors)} lỗi trong {render(self.source, lang)}:" if lang == "vi"
                else f"{len(self.errors)} problems in {self.source}:")
        return "\n".join([head, *(f"  {e.render(lang)}" for e in self.errors)])

    def __str__(self) -> str:
        return self.render("en")

