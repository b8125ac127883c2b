"""The demo knows which readings its simulated sensors made anomalous: its draw is the
simulated driver's own (edge_firmware/drv_simulated.py), input for input."""

from __future__ import annotations

from edge_firmware.drv_simulated import _rand  # the board's function, as a board runs it
from gateway.demo.alarms import injected, uniform_draw


def test_the_draw_is_the_simulated_drivers() -> None:
    for seed in (1, 2, 101, 0xFFFFFFFF, 123456789):
        for seq in range(0, 5000, 7):
            for k in (0, 1, 2, 99):
                assert uniform_draw(seed, seq, k) == _rand(seed, seq, k), (seed, seq, k)


def test_injected_readings_come_at_the_configured_rate() -> None:
    hits = sum(injected(7, seq, 0.01) for seq in range(100_000))
    assert 800 < hits < 1200  # 1 % of the readings
    assert [seq for seq in range(100_000) if injected(7, seq, 0.01)][:3] == [
        seq for seq in range(100_000) if _rand(7, seq, 99) < 0.01][:3]
