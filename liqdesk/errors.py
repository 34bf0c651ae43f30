"""Errors that carry a message meant for the user (what went wrong and where)."""


class LiqdeskError(Exception):
    """A problem the user can act on; the CLI prints it as one line, the app in a dialog or status bar."""


class DataError(LiqdeskError):
    """Input data that cannot be used: malformed file, empty range, unknown symbol."""


class ConfigError(LiqdeskError):
    """A bad option, preset, parameter or configuration file."""
