"""Protocols are frozen, versioned and hashed; every registered one is runnable as far as can be checked offline."""

import dataclasses

import pytest
import torch

import bench
from bench.noise import parse_noise

#: Golden hashes. A failing line means a protocol's settings changed: that moves numbers, so give the
#: protocol a new version (old records stay on the old board) and only then update its hash here.
GOLDEN = {
    ("camus-v1", 1): "5a7d8aef36a332c2",
    ("camus-cpu-v1", 1): "0d46246f4529f1fe",
    ("phantom-v1", 1): "0558ecb165959287",
    ("phantom-v2", 2): "0fef72e3e7fb0ef9",
    ("phantom-quick", 1): "ec5781aa4a908b8a",
    ("small", 1): "cd30fab0613a3e53",
    ("tiny", 1): "6fbb3f5f2285cb40",
    ("phantom-quick-trusted6", 1): "6e9d981386c5fc47",
    ("tiny-trusted1", 1): "9ae55b5a0f7b0934",
    # the v2 boards' training (issue 16)
    ("phantom-quick", 2): "0672707b36b8b6d3",
    ("camus-quick", 2): "cb5901c1dc98bbec",
    ("phantom-quick-trusted6", 2): "3bdef91465f50b23",
    ("camus-v1", 2): "f4acfbf439d2c360",
    ("camus-cpu-v1", 2): "773233853c97c04a",
    ("phantom-v1", 2): "03c9464ea6ce86dd",
    ("phantom-v2", 3): "f198b4b92a22cb76",
    # the v3 board: v2 at Adam's learning rate 1e-2 (v2 stopped short of where its minute allows)
    ("phantom-quick", 3): "fc60a8dde928c5df",
    ("camus-quick", 3): "b175f7c2bca7861e",
    ("phantom-quick-trusted6", 3): "a1fc9425be31f72b",
    # the v4 board: v3 with recipe generation 3 (the revised shared flag rule)
    ("phantom-quick", 4): "2617390e635b91cb",
    ("camus-quick", 4): "3c83f5ddba56ec6f",
    ("phantom-quick-trusted6", 4): "b249d63a946b1b5c",
}

#: every registered version of every protocol, as "name@vN"
EVERY_VERSION = [f"{n}@v{p.version}" for n in bench.protocols.names() for p in bench.protocols.versions(n)]


@pytest.mark.parametrize("name", EVERY_VERSION)
def test_protocol_hash_is_pinned_to_its_version(name):
    p = bench.protocols.get(name)
    assert GOLDEN.get((p.name, p.version)) == p.hash, f"{name} v{p.version} changed: bump its version"


@pytest.mark.parametrize("name", EVERY_VERSION)
def test_protocol_parts_exist(name):
    p = bench.protocols.get(name)
    assert p.dataset in bench.datasets
    for spec in p.noise_grid:
        parse_noise(spec)
    assert p.seeds and p.epochs > 0
    model = bench.build_model(p).eval()  # encoder and decoder fit together, no download
    with torch.no_grad():  # and the U-Net maps an image of the protocol's size to logits of that size
        assert model(torch.zeros(1, 1, p.image_size, p.image_size)).shape == (1, 4, p.image_size, p.image_size)


def test_any_setting_changes_the_hash():
    p = bench.protocols.get("tiny")
    for change in ({"epochs": 3}, {"lr": 2e-3}, {"noise_grid": ("none",)}, {"dataset_options": {"patients": 11}}):
        assert dataclasses.replace(p, **change).hash != p.hash


def test_the_study_grid():
    grid = bench.protocols.get("camus-v1").noise_grid
    assert grid[0] == "none" and len(grid) == 16
    assert {parse_noise(s).type for s in grid[1:]} == {"random", "systematic", "omission"}
    assert {parse_noise(s).level for s in grid[1:]} == {0.1, 0.25, 0.5, 0.75, 0.9}
    quick = bench.protocols.get("phantom-quick").noise_grid
    assert {parse_noise(s).level for s in quick[1:]} == {0.25, 0.5, 0.75}


@pytest.mark.parametrize("version", [2, 3, 4])
def test_camus_quick_is_phantom_quick_but_for_the_data(version):
    quick, twin = bench.protocols.get(f"phantom-quick@v{version}"), bench.protocols.get(f"camus-quick@v{version}")
    assert twin.dataset == "camus" and quick.dataset == "echo-phantom"
    assert dataclasses.replace(twin, name=quick.name, dataset=quick.dataset, description=quick.description) == quick


@pytest.mark.parametrize("name", ["phantom-quick", "phantom-quick-trusted6"])
def test_the_v3_board_is_v2_at_another_learning_rate(name):
    before, after = bench.protocols.get(f"{name}@v2"), bench.protocols.get(f"{name}@v3")
    changed = {f.name for f in dataclasses.fields(before) if getattr(before, f.name) != getattr(after, f.name)}
    assert after.version == 3 and changed == {"version", "description", "lr"}
    assert (before.lr, after.lr) == (1e-3, 1e-2)


@pytest.mark.parametrize("name", ["phantom-quick", "phantom-quick-trusted6", "camus-quick"])
def test_the_v4_board_is_v3_with_the_next_recipe_generation(name):
    before, after = bench.protocols.get(f"{name}@v3"), bench.protocols.get(name)
    changed = {f.name for f in dataclasses.fields(before) if getattr(before, f.name) != getattr(after, f.name)}
    assert after.version == 4 and changed == {"version", "description", "recipes"}
    assert (before.recipes, after.recipes) == (2, 3)


@pytest.mark.parametrize(("name", "old"), [("camus-v1", 1), ("camus-cpu-v1", 1), ("phantom-v1", 1), ("phantom-v2", 2)])
def test_a_paper_scale_protocol_s_next_version_changes_only_the_training(name, old):
    before, after = bench.protocols.get(f"{name}@v{old}"), bench.protocols.get(name)
    assert after.version == old + 1
    changed = {f.name for f in dataclasses.fields(before) if getattr(before, f.name) != getattr(after, f.name)}
    assert changed == {"version", "description", "recipes", "lr_schedule", "augment", "channels_last", "seeds"}
    assert (after.recipes, after.lr_schedule, after.augment, after.channels_last) == (2, "poly", "light", True)
    assert after.seeds == (0, 1, 2, 3, 4) and after.epochs == before.epochs and after.image_size == before.image_size
