"""The exceptions the command line turns into a one-line message without a traceback: ``UserError``
(exit status 2) and ``TrainingStopped`` (1, or 128 + the signal's number where a signal stopped it)."""


class UserError(Exception):
    """Bad input from the user: a missing file, a wrong layout, a value out of range.
    The message is one line that names the problem and says how to fix it; the CLI prints it
    without a traceback."""


class TrainingStopped(Exception):
    """Training stopped on purpose (a signal, a non-finite loss); the message says how to go on."""


def need(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)
