"""Recipe generations: a protocol runs the definitions of its generation, and no v1 definition or hash moved."""

import dataclasses
import json
from pathlib import Path

import pytest

import bench
from bench.method import Recipe, recipe_for
from bench.protocols import ADDED_LATER

BOARD = Path(__file__).resolve().parent.parent / "leaderboard" / "phantom-quick" / "v1"


def test_at_applies_the_revisions_up_to_the_generation_in_order():
    recipe = Recipe(
        name="x",
        description="one",
        detector="loss",
        refurbisher="pseudo-label",
        detector_params={"window": 3, "flag_rule": "mixture"},
        revisions=(
            (2, {"detect_at": 0.75, "detector_params": {"flag_rule": "populations-v2"}, "description": "two"}),
            (4, {"refurbisher": "discard", "detector_params": {"window": None}}),
        ),
    )
    first, second, third, fourth = (recipe.at(g) for g in (1, 2, 3, 4))
    assert (first.detect_at, first.detector_params, first.generation) == (0.5, {"window": 3, "flag_rule": "mixture"}, 1)
    assert (second.detect_at, second.detector_params, second.description, second.generation) == (
        0.75,
        {"window": 3, "flag_rule": "populations-v2"},  # params merge: the window stays
        "two",
        2,
    )
    assert third == second  # no revision at 3 (and no shared rule revision touches this one): generation 2's
    assert (fourth.refurbisher, fourth.detector_params, fourth.detect_at, fourth.generation) == (
        "discard",
        {"flag_rule": "populations-v2"},  # None drops a parameter
        0.75,
        4,
    )
    assert "generation" not in first.describe() and second.describe()["generation"] == 2
    assert all(r.revisions == () for r in (first, second, fourth))


@pytest.mark.parametrize(
    ("revisions", "message"),
    [
        (((1, {"detect_at": 0.75}),), "generations >= 2"),
        (((3, {"detect_at": 0.75}), (2, {"detect_at": 0.6})), "ascending"),
        (((2, {"name": "y"}),), "cannot change"),
        (((2, {"colour": "red"}),), "cannot change"),
        (((2, {"detect_at": 1.0}),), "refurbishing after the last epoch"),  # each generation must be a valid recipe
    ],
)
def test_bad_revisions_are_refused_at_registration(revisions, message):
    with pytest.raises(ValueError, match=message):
        Recipe(name="x", description="", detector="loss", refurbisher="pseudo-label", revisions=revisions)


def test_generation_1_of_every_recipe_is_the_registered_definition():
    for name in bench.methods.names():
        recipe = bench.methods.get(name)
        assert recipe.at(1) == dataclasses.replace(recipe, revisions=())
        assert "generation" not in recipe.at(1).describe()


def test_every_v1_protocol_keeps_the_hash_its_published_records_hold(tmp_path):
    # independent truth: the hash written into the phantom-quick v1 board's records when they were made
    record = json.loads(sorted(BOARD.rglob("*.json"))[0].read_text())
    quick = bench.protocols.get("phantom-quick@v1")
    assert quick.recipes == 1 and record["protocol"]["hash"] == quick.hash
    assert "recipes" not in quick.settings()
    later = dataclasses.replace(quick, recipes=2)
    assert later.settings()["recipes"] == 2 and later.hash != quick.hash
    assert set(ADDED_LATER) <= {f.name for f in dataclasses.fields(quick)}


def test_a_protocol_runs_its_generation_of_a_recipe():
    tiny = bench.protocols.get("tiny")
    assert recipe_for("loss-refurb", tiny).refurbisher == "pseudo-label"
    later = recipe_for("loss-refurb", dataclasses.replace(tiny, recipes=2))
    assert (later.refurbisher, later.detect_at, later.detector_params["flag_rule"]) == ("gated", 0.75, "populations")
    assert recipe_for("baseline", dataclasses.replace(tiny, recipes=2)) == recipe_for("baseline", tiny)


def test_generation_2_definitions_say_what_issue_14_fixed():
    # the recipes of the v1 boards, as generation 2 redefines them (recipes added later have one definition)
    gen2 = {name: bench.methods.get(name).at(2) for name in bench.methods.names() if bench.methods.get(name).revisions}
    assert {"loss-refurb", "vog-refurb", "coteaching", "adele", "oracle-restore"} <= set(gen2)
    for name, recipe in gen2.items():
        if recipe.detector is not None and recipe.detector != "oracle":
            assert recipe.detector_params.get("flag_rule") == "populations", name  # one rule for every thresholding detector
        if recipe.refurbisher not in (None, "discard", "restore"):
            assert recipe.refurbisher == "gated" and recipe.refurbisher_params["teacher"] == "temporal", name
        if recipe.refurbisher is not None:
            assert recipe.detect_at == 0.75, name
        assert "{" not in recipe.description and "half of training" not in recipe.description, name
    vog = gen2["vog-refurb"].detector_params
    assert (vog["window"], vog["region"]) == ("late", "band")
    assert gen2["adele"].corrector_params["class_constraint"] is False
    assert "threshold" not in gen2["coteaching"].detector_params and gen2["coteaching"].trainer_params == {"tau": 0.3}


def test_generation_3_changes_only_the_shared_flag_rule():
    """Generation 3 swaps "populations" for "populations-v2" in every recipe that names it, and changes nothing else."""
    changed = set()
    for name in bench.methods.names():
        second, third = bench.methods.get(name).at(2), bench.methods.get(name).at(3)
        if second.detector_params.get("flag_rule") != "populations":
            assert third == second, name  # recipes without the rule keep their generation-2 definition, generation too
            continue
        changed.add(name)
        assert third.generation == 3 and third.detector_params == {**second.detector_params, "flag_rule": "populations-v2"}
        assert "population flags (v2)" in third.description, name
        rest = {f.name for f in dataclasses.fields(second) if getattr(second, f.name) != getattr(third, f.name)}
        assert rest == {"detector_params", "description", "generation"}, name
    assert {"loss-refurb", "vog-refurb", "confident-refurb", "coteaching", "selfie", "spatial-correction"} <= changed
    assert "loss-trusted-refurb" not in changed and "baseline" not in changed
    assert bench.methods.get("loss-refurb").at(4) == bench.methods.get("loss-refurb").at(3)  # no later generation yet


def test_a_record_whose_recipe_differs_from_its_generation_is_invalid(tmp_path):
    from bench.validate import check_records

    source = sorted((BOARD / "loss-refurb").rglob("*.json"))[0]
    data = json.loads(source.read_text())
    assert check_records([source]).problems == []
    data["method"]["recipe"]["detect_at"] = 0.75
    edited = tmp_path / "seed0.json"
    edited.write_text(json.dumps(data))
    problems = [text for _, text in check_records([edited]).problems]
    assert any("method.recipe is not loss-refurb's definition at recipe generation 1" in p for p in problems), problems
