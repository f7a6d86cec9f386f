"""The error a training run raises for bad options (a ``ValueError``, so the CLI prints one line)."""


class ConfigError(ValueError):
    """A bad option or a run folder that cannot be used as asked."""
