"""The one exception type that means "the user asked for something we refuse"."""


class UsageError(Exception):
    """Bad input: a config value, a combination of values, or missing data.

    Its message is one line naming the key, the value and what is allowed; the command
    line prints it as ``normbench: error: <message>`` and exits with status 2.
    """

    exit_code = 2
