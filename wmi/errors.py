"""The one exception type for user mistakes."""


class WmiError(ValueError):
    """A problem with the user's input: a missing file, a bad size, a conflicting option.

    The message is one line that names the file or option and the problem. The command line
    prints it without a traceback and exits non-zero; library callers can catch it as a
    ``ValueError``.
    """
