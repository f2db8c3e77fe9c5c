"""Shared fixtures: one quiet local Ray for the whole session (a start costs seconds)."""

import pytest


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from bench.runner import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()
