"""Error types shared by feeds, engine and adapters.

A bad *row* is never an exception: it goes to the rejects table and the rest of the file loads.
These exceptions are for problems that stop a whole file, a rule set or a run.
"""

from __future__ import annotations


class ReconError(Exception):
    """Base class of every error recon raises on purpose.

    The CLI prints ``str(error)`` as one line and exits non-zero; anything else is a bug.
    """


class FeedFormatError(ReconError):
    """A file cannot be read at all (unreadable, wrong encoding, missing required column).

    Parameters
    ----------
    path
        The file that failed.
    problem
        What is wrong and, where possible, what to do about it.
    line
        1-based line number, when the problem sits on one line.
    raw
        The raw text of that line, when known.
    """

    def __init__(self, path: str, problem: str, line: int | None = None, raw: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.raw = raw
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class PrecisionError(ReconError, ValueError):
    """An amount has more decimals than its currency allows, or is not a decimal number."""


class RuleConfigError(ReconError):
    """A rule-set file is invalid. ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        listing = "; ".join(self.problems)
        super().__init__(f"{source}: invalid rule set ({len(self.problems)} problem(s)): {listing}")


class InputError(ReconError):
    """Command-line or API input that makes a run impossible (e.g. no bank file given)."""


class ModelFileError(ReconError):
    """A learned scorer's model file (made by ``recon train``) cannot be used: missing, not
    JSON, another format or a newer version, a checksum that does not match (corrupt or edited),
    numbers that are not finite, or features that do not match the rule set's levels.

    Parameters
    ----------
    path
        The model file.
    problem
        What is wrong with it.
    fix
        What to do about it (default: make the file again with ``recon train``).
    """

    def __init__(self, path: str, problem: str, fix: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.fix = fix or f"make it again with `recon train ... --out {self.path}`"
        super().__init__(f"model file {self.path}: {problem}; {self.fix}")


class AdapterError(ReconError):
    """Writing results somewhere failed."""


class TransientAdapterError(AdapterError):
    """A write failed for a reason that may go away (lock, network): retrying is sensible."""


class TerminalAdapterError(AdapterError):
    """A write failed for good (bad credentials, schema mismatch): retrying will not help."""
