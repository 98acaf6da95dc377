"""The one exception type for user mistakes, and how names in its messages are shown."""

import re


class WmiError(ValueError):
    """A problem with the user's input: a missing file, a bad size, a conflicting option.

    The message is one line that names the file or option and the problem. The command line
    prints it without a traceback and exits non-zero; library callers can catch it as a
    ``ValueError``.
    """


#: Bytes of a file name that are not UTF-8 (Python's surrogate escapes, U+DC80-U+DCFF) and
#: control characters (C0, DEL, C1: newlines, terminal escape sequences).
_UNPRINTABLE = re.compile("[\udc80-\udcff\x00-\x1f\x7f-\x9f]")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def printable(text: str, controls: bool = True) -> str:
    """``text`` (a file name, a value read from a file) safe to print and to write as UTF-8.

    A byte of a file name that is not UTF-8 (``printf 'a\\xff'``) becomes the four characters
    ``\\xff``, and so, with ``controls``, does a control character (an escape sequence that
    would recolour or clear the terminal, a newline that would split a report's line). Text
    that needs neither is returned unchanged.

    Args:
        text: the text.
        controls: also escape control characters (False for whole documents, whose newlines
            are their own).
    """
    pattern = _UNPRINTABLE if controls else _NOT_UTF8
    return pattern.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", text)
