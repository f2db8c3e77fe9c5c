"""Shared fixtures: a private dataset cache, and one quiet local Ray for the whole session."""

import os
import shutil
import tempfile

import pytest

# Set before anything (Ray workers included) reads it: tests never touch the user's cache.
os.environ["ECHO_NOISE_BENCH_CACHE"] = tempfile.mkdtemp(prefix="enb-cache-")

# Under pytest-xdist (`make test` runs one worker per core) each worker is one core's worth: torch's default of
# one thread per core in every worker would oversubscribe the machine. Subprocesses the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(os.environ["ECHO_NOISE_BENCH_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from bench.runner import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()
