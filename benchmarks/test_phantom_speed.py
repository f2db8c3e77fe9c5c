"""Benchmark: echo-phantom generation speed (target: >= 200 images/s at 256 x 256 on one core).

Run with `make benchmark`. Prints images per second; the reference is the time
of one 256 x 256 Gaussian filter measured in the same run, so the ratio moves
with the phantom's code, not with how busy the machine is.
"""

import time

import numpy as np
import pytest
from scipy import ndimage

import bench

PATIENTS = 50  # 200 images


def _generate(tmp_path):
    # a fresh cache folder every round: time the generator, not the cache
    folder = tmp_path / str(time.perf_counter_ns())
    return bench.load_dataset("echo-phantom", size=256, patients=PATIENTS, cache_dir=folder)


@pytest.mark.benchmark(group="phantom", min_rounds=3)
def test_phantom_256_images_per_second(benchmark, tmp_path):
    data = benchmark.pedantic(_generate, args=(tmp_path,), rounds=3, iterations=1)
    image = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(200):
        ndimage.gaussian_filter(image, 2.0)
    filter_s = (time.perf_counter() - t0) / 200
    assert len(data) == 4 * PATIENTS
    per_image = benchmark.stats.stats.min / len(data)
    print(
        f"\necho-phantom 256 px: {1 / per_image:.0f} images/s (target >= 200); "
        f"one image costs {per_image / filter_s:.1f} Gaussian filters of 256 x 256"
    )
