"""The registry: one way to add, get and list components; clear errors."""

import subprocess
import sys

import pytest

import bench
from bench import BenchError, Registry


def test_register_get_and_list_with_wildcards():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)

    @reg.register("beta-two")
    def beta():
        return 2

    assert reg.get("alpha") == 1
    assert reg.get("beta-two") is beta
    assert reg.names() == ["alpha", "beta-two"]
    assert reg.names("b*") == ["beta-two"]
    assert "alpha" in reg and "gamma" not in reg


def test_registering_a_taken_name_is_an_error_naming_the_first_owner():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1, origin="plugin_a")
    with pytest.raises(ValueError, match="'alpha' is already registered \\(by plugin_a\\)"):
        reg.register("alpha", 2)
    assert reg.get("alpha") == 1


@pytest.mark.parametrize("bad", ["", " a", "a,b", "a:b", "a b", "a/b"])
def test_names_that_would_break_specs_or_paths_are_refused(bad):
    with pytest.raises(ValueError, match="invalid widget name"):
        Registry("widget").register(bad, 1)


def test_unknown_name_suggests_the_closest_and_where_to_look():
    reg: Registry[int] = Registry("method")
    reg.register("vog-refurb", 1)
    reg.register("loss-refurb", 2)
    with pytest.raises(BenchError) as info:
        reg.get("vog-refrub")
    assert str(info.value) == "unknown method 'vog-refrub'; did you mean 'vog-refurb'? (see: bench list methods)"


def test_unknown_name_without_a_close_match_gives_no_suggestion():
    reg: Registry[int] = Registry("noise type", "noise")
    reg.register("systematic", 1)
    with pytest.raises(BenchError) as info:
        reg.get("zzz")
    assert str(info.value) == "unknown noise type 'zzz' (see: bench list noise)"


def test_every_kind_has_one_registry_with_builtins():
    assert {"baseline", "loss-refurb"} <= set(bench.methods.names())
    assert {"random", "systematic"} <= set(bench.noises.names())
    assert "echo-phantom" in bench.datasets.names()
    assert {"phantom-quick", "tiny"} <= set(bench.protocols.names())
    assert "loss" in bench.detectors.names()
    assert "pseudo-label" in bench.refurbishers.names()
    assert "standard" in bench.trainers.names()


def test_plugins_load_under_private_names():
    assert bench.methods.origin("loss-refurb") == "bench._plugins.methods.loss"
    assert bench.datasets.origin("echo-phantom") == "bench._plugins.datasets.echo_phantom"  # a package plugin


def test_plugin_folders_are_not_importable_top_level_packages(tmp_path):
    code = "import importlib.util as u, bench; bench.methods.names(); print(u.find_spec('methods'), u.find_spec('datasets'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None None"


def test_refurb_and_discard_pair_shares_the_detector_and_differs_in_the_action(monkeypatch):
    fresh = Registry("method")
    monkeypatch.setattr(bench.method, "methods", fresh)
    refurb, discard = bench.register_refurb_and_discard("probe", "flagged samples {what}.", detector="loss", detect_at=0.25)
    assert fresh.names() == ["probe-discard", "probe-refurb"]
    assert (refurb.refurbisher, discard.refurbisher) == ("pseudo-label", "discard")
    assert refurb.detector == discard.detector == "loss" and refurb.detect_at == discard.detect_at == 0.25
    assert refurb.description == "flagged samples replaced by the model's pseudo-labels."
    assert discard.description == "flagged samples dropped from the loss."
    assert fresh._origin["probe-refurb"] == __name__
    with pytest.raises(ValueError, match="already registered"):
        bench.register_refurb_and_discard("probe", "{what}", detector="loss")
