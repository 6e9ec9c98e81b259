"""The learning-rate schedule of a run: a config's ``optimizer.learning_rate`` list of
``[step, lr]`` pairs, piecewise constant (the original's)."""
from common.errors import UserError
from common import schema


def check_schedule(schedule):
    """UserError unless ``schedule`` is a list of [step, lr] pairs with increasing steps."""
    try:
        if schedule is None:
            raise ValueError('no schedule')
        schema.check_schedule(list(map(list, schedule)))
    except (TypeError, ValueError) as error:
        raise UserError('learning_rate schedule: %s' % error) from None


def learning_rate_at(schedule, steps):
    """The lr of the first entry whose boundary is >= ``steps``; None once past the last
    boundary (a schedule checked by check_schedule)."""
    for boundary, lr in schedule:
        if steps <= boundary:
            return float(lr)
    return None
