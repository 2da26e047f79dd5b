"""User-facing errors: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad flag, bad file, bad query). Exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration file is wrong: names the file, the key path and the problem."""

    def __init__(self, source: str, path: str, problem: str, *, line: int | None = None,
                 subject: str = "") -> None:
        self.source = source
        self.path = path
        self.problem = problem
        self.line = line  # in the file, where known
        self.subject = subject  # what the path is about, e.g. "system cong-ttdt"
        where = source + (f": line {line}" if line is not None else "")
        if path:
            where += f": {path}" + (f" ({subject})" if subject else "")
        super().__init__(f"{where}: {problem}")


class ConfigErrors(ConfigError):
    """Several problems in one file, all reported at once (a person fixes them in one go)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.source, first.path, first.problem)
        self.errors = errors

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        lines = [f"{len(self.errors)} problems in {self.source}:"]
        lines += [f"  {e}" for e in self.errors]
        return "\n".join(lines)
