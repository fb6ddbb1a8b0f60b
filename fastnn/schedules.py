"""The course's learning-rate decay, once: α = α₀ / (1 + decay_rate · epoch_num).

:func:`update_lr` decays every epoch; :func:`schedule_lr_decay` applies the same
formula to the number of whole ``time_interval``-epoch intervals elapsed, so the
rate falls in steps (the course's fixed-interval scheduling).
"""

from . import _validation as _v
from . import _validation_optim as _vo

__all__ = ["update_lr", "schedule_lr_decay"]


def update_lr(learning_rate0, epoch_num, decay_rate):
    """α₀ / (1 + decay_rate · epoch_num): the course's ``update_lr``.

    Parameters
    ----------
    learning_rate0 : float > 0
        α₀, the rate at epoch 0.
    epoch_num : int >= 0
    decay_rate : float >= 0
        0 keeps the rate constant.

    Returns
    -------
    float
    """
    learning_rate0 = _v.check_positive_float("learning_rate0", learning_rate0)
    epoch_num = _vo.check_non_negative_int("epoch_num", epoch_num)
    decay_rate = _vo.check_non_negative_float("decay_rate", decay_rate)
    return learning_rate0 / (1 + decay_rate * epoch_num)


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """α₀ / (1 + decay_rate · ⌊epoch_num / time_interval⌋): the course's ``schedule_lr_decay``.

    Parameters
    ----------
    learning_rate0 : float > 0
    epoch_num : int >= 0
    decay_rate : float >= 0
    time_interval : int >= 1
        Epochs per step; 1 is :func:`update_lr`.

    Returns
    -------
    float
    """
    epoch_num = _vo.check_non_negative_int("epoch_num", epoch_num)
    time_interval = _v.check_positive_int("time_interval", time_interval)
    return update_lr(learning_rate0, epoch_num // time_interval, decay_rate)
