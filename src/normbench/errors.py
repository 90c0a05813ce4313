"""The one exception type that means "the user asked for something we refuse"."""


class UsageError(Exception):
    """Bad input: a config value, a combination of values, or missing data.

    Its message is one line naming the key, the value and what is allowed; the command
    line prints it as ``normbench: error: <message>`` and exits with status 2.
    """

    exit_code = 2


class RunFailed(Exception):
    """A run that started and then failed; its summary.json says ``failed`` and why.

    The command line prints ``normbench: error: <message>`` and exits with status 1."""

    exit_code = 1
