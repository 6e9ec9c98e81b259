"""engine/schedule.py: the piecewise-constant learning-rate schedule."""
import pytest

from common.config import load_config
from common.errors import UserError
from engine.schedule import check_schedule, learning_rate_at


def test_learning_rate_at_boundaries():
    schedule = [[100, 1.0e-3], [200, 5.0e-4], [300, 2.5e-4]]
    assert learning_rate_at(schedule, 0) == 1.0e-3
    assert learning_rate_at(schedule, 100) == 1.0e-3
    assert learning_rate_at(schedule, 101) == 5.0e-4
    assert learning_rate_at(schedule, 200) == 5.0e-4
    assert learning_rate_at(schedule, 201) == 2.5e-4
    assert learning_rate_at(schedule, 300) == 2.5e-4
    assert learning_rate_at(schedule, 301) is None


def test_learning_rate_at_on_shipped_schedule():
    schedule = load_config('MaskFlownet_S').optimizer.learning_rate.value
    assert learning_rate_at(schedule, 0) == 1.0e-4
    assert learning_rate_at(schedule, 400000) == 1.0e-4
    assert learning_rate_at(schedule, 400001) == 5.0e-5
    assert learning_rate_at(schedule, 1200000) == 6.25e-6
    assert learning_rate_at(schedule, 1200001) is None


@pytest.mark.parametrize('schedule', [
    [], None, 'abc', [[100, 1e-3], [100, 5e-4]], [[200, 1e-3], [100, 5e-4]],
    [[100]], [[100, 1e-3, 5]], [[100.5, 1e-3]], [['100', 1e-3]], [[100, 'fast']], [100, 1e-3],
])
def test_check_schedule_rejects_malformed(schedule):
    with pytest.raises(UserError, match='^learning_rate schedule: '):
        check_schedule(schedule)
