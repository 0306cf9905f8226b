"""Stop signals are recorded, not fatal, and the previous handlers come back afterwards."""

from __future__ import annotations

import os
import signal

import pytest

from synthlm.train.signals import StopRequest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_stop_signal_sets_the_flag_and_handlers_are_restored(sig):
    before = signal.getsignal(sig)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), sig)
        assert stop.requested and stop.received == sig
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal does not replace the first
        assert stop.received == sig
    assert signal.getsignal(sig) == before
