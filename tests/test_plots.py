"""Figures: one contour colour per structure of the label set, named in the legend."""

import numpy as np

from bench.labelset import CAMUS_LABELS, LabelSet, Structure
from bench.plots import PALETTE, contour_panel, legend


def test_contours_take_their_colours_and_legend_from_the_label_set():
    two = LabelSet("two", (Structure(1, "rv", "right ventricle"), Structure(2, "wall", "wall")))
    label = np.zeros((32, 32), np.uint8)
    label[4:12, 4:12], label[16:28, 16:28] = 1, 2
    pixels = np.asarray(contour_panel(np.zeros((32, 32), np.uint8), label, side=64, label_set=two))
    drawn = [(pixels == rgb).all(axis=2).any() for _, rgb in PALETTE[:3]]
    assert drawn == [True, True, False]
    assert legend(two) == "red right ventricle, green wall"
    assert legend(CAMUS_LABELS) == "red LV cavity, green myocardium, blue left atrium"


def test_a_structure_cut_by_the_frame_has_no_contour_along_it():
    pixels = np.asarray(contour_panel(np.zeros((16, 16), np.uint8), np.ones((16, 16), np.uint8), side=16))
    assert not (pixels == PALETTE[0][1]).all(axis=2).any()
