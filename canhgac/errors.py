"""User-facing errors: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad flag, bad file, bad query). Exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration file is wrong: names the file, the key path and the problem."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")
