"""One exception type for every bad input, so stages can print it as one clear line."""


class GanaugError(Exception):
    """Bad input or a failed precondition; the message names the thing and what was expected."""
