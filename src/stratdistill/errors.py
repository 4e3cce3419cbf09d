"""The one exception type users see for bad input.

Every check that can fail on user input raises :class:`ConfigError` with one line naming the key, the
bad value and what is allowed, so that ``launch.py`` can print it and exit before any model is loaded.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: a config value, a scenario file or an artifact that cannot be used."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not valid: {allowed}")

    def __reduce__(self):  # picklable, so that a SLURM job's ConfigError reaches the submitting command
        return (type(self), (self.key, self.value, self.allowed))


class TeacherStopped(RuntimeError):
    """The teacher failed mid-run (server gone, retries used up). Chunks already written are kept, and
    running the same command again resumes from them."""
