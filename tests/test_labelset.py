"""Label sets: CAMUS's as the records and the model know it, validation, and the JSON round trip the cache relies on."""

import json

import pytest

import bench
from bench.labelset import CAMUS_LABELS, LabelSet, Structure


def test_camus_label_set_is_what_records_and_the_model_use():
    assert CAMUS_LABELS.names == ("lv", "myo", "la") and CAMUS_LABELS.values == (1, 2, 3)
    assert CAMUS_LABELS.regions == {"lv": (1,), "myo": (2,), "la": (3,), "epi": (1, 2)}
    assert CAMUS_LABELS.averaged == ("lv", "myo", "la") and CAMUS_LABELS.num_classes == 4 == bench.NUM_CLASSES
    assert CAMUS_LABELS.by_value == {1: "lv", 2: "myo", 3: "la"} == bench.STRUCTURES
    assert CAMUS_LABELS.titles == {0: "background", 1: "LV cavity", 2: "myocardium", 3: "left atrium"} == bench.LABEL_NAMES
    assert (CAMUS_LABELS.value(CAMUS_LABELS.cavity), CAMUS_LABELS.value(CAMUS_LABELS.atrium)) == (1, 3)
    with pytest.raises(KeyError, match="no structure 'rv'"):
        CAMUS_LABELS.value("rv")


def test_data_carries_camus_labels_unless_told_otherwise():
    data = bench.load_dataset("echo-phantom", size=32, patients=3, splits=(1, 1, 1))
    assert data.label_set == CAMUS_LABELS and data.split("train").label_set == CAMUS_LABELS


A, B = Structure(1, "a", "A"), Structure(2, "b", "B")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(structures=(B,)), "values must be 1, 2, ..., K"),
        (dict(structures=(A, Structure(2, "a", "again"))), "must be unique"),
        (dict(structures=(A, Structure(2, "mean", "M"))), "not 'mean'"),
        (dict(structures=(A, B), derived=(("b", (1, 2)),)), "must be unique"),
        (dict(structures=(A, B), derived=(("ab", (1, 3)),)), "outside (1, 2)"),
        (dict(structures=(A, B), mean_over=("c",)), "'c' is not one of its structures"),
        (dict(structures=(A, B), cavity="c"), "'c' is not one of its structures"),
    ],
)
def test_inconsistent_label_sets_are_refused(kwargs, words):
    with pytest.raises(ValueError) as err:
        LabelSet("bad", **kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize("label_set", [CAMUS_LABELS, LabelSet("two", (A, B), mean_over=("b",))])
def test_json_round_trip_gives_an_equal_label_set(label_set):
    back = LabelSet.from_dict(json.loads(json.dumps(label_set.to_dict())))
    assert back == label_set and hash(back) == hash(label_set)
