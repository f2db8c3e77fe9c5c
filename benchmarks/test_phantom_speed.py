"""Benchmark: echo-phantom generation speed (target: >= 200 images/s at 256 x 256 on one core).

Run with `make benchmark`. Prints images per second for generation alone (the
target; generator 3, with frozen generator 2 for comparison) and for a first
`load_dataset` of generator 3 (generation plus the cache write). The
reference is one 256 x 256 Gaussian filter timed in the same run, so the ratio
moves with the phantom's code, not with how busy the machine is.
"""

import sys
import time

import numpy as np
import pytest
from scipy import ndimage

import bench

PATIENTS = 50  # 200 images
SIZE = 256


def _generator():
    """The plugin's uncached renderer (`_generate`), reached through the registry."""
    module = sys.modules[bench.datasets.get("echo-phantom").__module__]
    return module._generate


def _filter_seconds() -> float:
    image = np.random.default_rng(0).random((SIZE, SIZE), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(200):
        ndimage.gaussian_filter(image, 2.0)
    return (time.perf_counter() - t0) / 200


@pytest.mark.benchmark(group="phantom", min_rounds=3)
@pytest.mark.parametrize("generator", [3, 2])
def test_phantom_generation_images_per_second(benchmark, generator):
    generate = _generator()
    splits = (40, 5, 5)
    data = benchmark.pedantic(generate, args=(SIZE, PATIENTS, 0, splits, generator), rounds=3, iterations=1)
    assert len(data) == 4 * PATIENTS
    per_image = benchmark.stats.stats.min / len(data)
    print(
        f"\necho-phantom generator {generator}, {SIZE} px, generation: {1 / per_image:.0f} images/s (target >= 200); "
        f"one image costs {per_image / _filter_seconds():.1f} Gaussian filters of {SIZE} x {SIZE}"
    )


@pytest.mark.benchmark(group="phantom", min_rounds=3)
def test_phantom_first_load_images_per_second(benchmark, tmp_path):
    def first_load():
        # a fresh cache folder every round: time generation and the cache write, not a cache hit
        folder = tmp_path / str(time.perf_counter_ns())
        return bench.load_dataset("echo-phantom", size=SIZE, patients=PATIENTS, generator=3, cache_dir=folder)

    data = benchmark.pedantic(first_load, rounds=3, iterations=1)
    assert len(data) == 4 * PATIENTS
    per_image = benchmark.stats.stats.min / len(data)
    print(f"\necho-phantom generator 3, {SIZE} px, first load (generation + cache write): {1 / per_image:.0f} images/s")
