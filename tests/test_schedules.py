"""fastnn.schedules: the course's learning-rate decay, its properties (hypothesis)
and bad input. The course's published values are checked in
tests/test_course2_cases.py."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.schedules import schedule_lr_decay, update_lr

rates = st.floats(1e-6, 10.0)
epochs = st.integers(0, 10**6)
decays = st.floats(0, 10.0)


def _settings():
    return settings(max_examples=200, deadline=None, derandomize=True, database=None)


@_settings()
@given(rates, epochs, decays)
def test_update_lr_is_the_formula(learning_rate0, epoch_num, decay_rate):
    assert update_lr(learning_rate0, epoch_num, decay_rate) == \
        learning_rate0 / (1 + decay_rate * epoch_num)
    assert update_lr(learning_rate0, 0, decay_rate) == learning_rate0
    assert update_lr(learning_rate0, epoch_num, 0) == learning_rate0


@_settings()
@given(rates, epochs, decays)
def test_update_lr_never_rises(learning_rate0, epoch_num, decay_rate):
    assert update_lr(learning_rate0, epoch_num + 1, decay_rate) <= \
        update_lr(learning_rate0, epoch_num, decay_rate) <= learning_rate0


@_settings()
@given(rates, epochs, decays, st.integers(1, 5000))
def test_schedule_steps_once_per_interval(learning_rate0, epoch_num, decay_rate, time_interval):
    k = epoch_num // time_interval
    rate = schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval)
    assert rate == update_lr(learning_rate0, k, decay_rate)
    # Constant across the interval that holds epoch_num:
    assert rate == schedule_lr_decay(learning_rate0, k * time_interval, decay_rate, time_interval)
    assert rate == schedule_lr_decay(learning_rate0, (k + 1) * time_interval - 1, decay_rate,
                                     time_interval)
    assert schedule_lr_decay(learning_rate0, epoch_num, decay_rate, 1) == \
        update_lr(learning_rate0, epoch_num, decay_rate)


def test_schedule_default_interval_is_1000():
    assert schedule_lr_decay(1.0, 999, 1.0) == 1.0
    assert schedule_lr_decay(1.0, 1000, 1.0) == 0.5
    assert isinstance(update_lr(1, 2, 1), float)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: update_lr(0, 1, 1), ValueError, "learning_rate0 must be a positive"),
    (lambda: update_lr(-0.1, 1, 1), ValueError, "learning_rate0 must be a positive"),
    (lambda: update_lr(float("inf"), 1, 1), ValueError, "learning_rate0 must be a positive"),
    (lambda: update_lr("0.1", 1, 1), TypeError, "learning_rate0 must be a positive"),
    (lambda: update_lr(0.1, -1, 1), ValueError, "epoch_num must be a non-negative int"),
    (lambda: update_lr(0.1, 1.5, 1), TypeError, "epoch_num must be a non-negative int"),
    (lambda: update_lr(0.1, True, 1), TypeError, "epoch_num must be a non-negative int"),
    (lambda: update_lr(0.1, 1, -0.5), ValueError, "decay_rate must be a non-negative"),
    (lambda: update_lr(0.1, 1, float("nan")), ValueError, "decay_rate must be a non-negative"),
    (lambda: update_lr(0.1, 1, None), TypeError, "decay_rate must be a non-negative"),
    (lambda: schedule_lr_decay(0.1, 1, 1, 0), ValueError, "time_interval must be a positive int"),
    (lambda: schedule_lr_decay(0.1, 1, 1, 2.5), TypeError, "time_interval must be a positive"),
    (lambda: schedule_lr_decay(0.1, -3, 1, 10), ValueError, "epoch_num must be a non-negative"),
    (lambda: schedule_lr_decay(0, 3, 1, 10), ValueError, "learning_rate0 must be a positive"),
    (lambda: schedule_lr_decay(0.1, 3, -1, 10), ValueError, "decay_rate must be a non-negative"),
])
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
