"""`bench train` times real steps on sample pixels and reports what it measured."""
from __future__ import annotations

from facewright.bench.train import bench_train


def test_bench_train_times_the_preset_with_flags_over_it():
    result = bench_train(preset="demo", model="test-ae", batch=2, steps=2, gan_power=0.1, device="cpu")
    assert (result.model, result.resolution, result.batch, result.gan) == ("test-ae", 64, 2, True)
    assert result.samples_per_second > 0 and result.augment_ms > 0 and result.model_ms > 0
    assert result.peak_memory_mb > 0 and "samples/s (A+B)" in result.row()
