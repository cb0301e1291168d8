"""The kinds of failure a person can act on, and the exit code each one gives.

The README promises: 0 ok, 1 a pipeline step failed, 2 usage or configuration,
3 a data-quality gate, 4 a bad input file (rejected; nothing of it applied).
Errors raised anywhere in the package carry their kind by class, so the ``crm``
command maps them in one table (``cli.exit_code``) instead of guessing from text.
"""

from __future__ import annotations


class UsageError(Exception):
    """The command or its configuration is wrong: an option, a name, a range, a missing file argument."""


class BadInputFile(Exception):
    """A file given to the pipeline (an intake sheet, a filled call sheet) was refused as a whole.

    The message names the file and, where it helps, the sheet, row and column; nothing
    of the file was applied."""
