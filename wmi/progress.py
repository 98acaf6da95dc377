"""The two callbacks long library work reports through; the library never prints.

Callers (the command line, a notebook) decide how to show them: a progress bar, log lines.
This module imports nothing.
"""

from collections.abc import Callable

#: ``progress(done, total)``: called with ``done = 0`` once the work is known, then per item.
Progress = Callable[[int, int], None]
#: ``notify(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``.
Notify = Callable[[str, str], None]
