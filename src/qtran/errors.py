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

    def __init__(self, run_dir, chunk: int | None, step: int | None = None):
        super().__init__(str(run_dir))
        # chunk: chunks complete in the newest checkpoint (None if none), the number a resume
        # prints and summary.json records as resumed_from_chunk; step: training steps done then
        self.run_dir, self.chunk, self.step = run_dir, chunk, step
