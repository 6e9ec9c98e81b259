"""The learning-rate schedule of a run: a config's ``optimizer.learning_rate`` list of
``[step, lr]`` pairs, piecewise constant (the original's)."""
from common.errors import UserError


def _check_schedule(schedule):
    if not isinstance(schedule, (list, tuple)) or not schedule:
        raise UserError(f'learning_rate schedule must be a non-empty list of [step, lr] pairs, got {schedule!r}')
    previous = None
    for entry in schedule:
        ok = (isinstance(entry, (list, tuple)) and len(entry) == 2
              and isinstance(entry[0], int) and not isinstance(entry[0], bool)
              and isinstance(entry[1], (int, float)) and not isinstance(entry[1], bool))
        if not ok:
            raise UserError(f'learning_rate schedule entry {entry!r} is not a [step, lr] pair')
        if previous is not None and entry[0] <= previous:
            raise UserError(f'learning_rate schedule boundaries must increase: {previous} then {entry[0]}')
        previous = entry[0]


def learning_rate_at(schedule, steps):
    """The lr of the first entry whose boundary is >= ``steps``; None once past the last boundary."""
    _check_schedule(schedule)
    for boundary, lr in schedule:
        if steps <= boundary:
            return float(lr)
    return None
