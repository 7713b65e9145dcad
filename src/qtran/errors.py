"""Errors caused by what a user typed or gave us, as opposed to bugs in qtran.

The CLI prints a UserError as one line and exits with status 2; anything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: unknown name, malformed file, out-of-range value."""


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; training stops and the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the newest complete state was checkpointed."""

    def __init__(self, run_dir, chunk: int | None):
        super().__init__(str(run_dir))
        self.run_dir, self.chunk = run_dir, chunk  # chunk: the newest checkpoint, None if none
