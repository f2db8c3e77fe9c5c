"""Small PIL drawings: label contours over echo images, side by side (no matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.files import atomic_writer
from bench.labelmaps import boundary
from bench.labelset import CAMUS_LABELS, LabelSet

#: side of one panel in pixels (images and labels are scaled to it)
PANEL = 256
#: space between and around panels
GAP = 8
#: height of the caption band at the top
CAPTION = 36
#: contour colours (name, RGB) of the structures in value order, repeated past the last (CAMUS: LV red, wall green, atrium blue)
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 64, 64)),
    ("green", (64, 224, 64)),
    ("blue", (64, 160, 255)),
    ("yellow", (240, 220, 64)),
    ("magenta", (224, 64, 224)),
    ("cyan", (64, 224, 224)),
)


def colour(value: int) -> tuple[str, tuple[int, int, int]]:
    """The (name, RGB) contour colour of structure `value` (1..K)."""
    return PALETTE[(value - 1) % len(PALETTE)]


def legend(label_set: LabelSet) -> str:
    """'red LV cavity, green myocardium, ...': which colour draws which structure."""
    return ", ".join(f"{colour(s.value)[0]} {s.title}" for s in label_set.structures)


def figure_size(rows: int) -> tuple[int, int]:
    """(width, height) of a `compare_figure` with `rows` samples: two panels per row, gaps, caption band."""
    return 2 * PANEL + 3 * GAP, CAPTION + rows * (PANEL + GAP)


def _nearest(a: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D array to side x side."""
    rows = (np.arange(side) * a.shape[0] // side).clip(0, a.shape[0] - 1)
    cols = (np.arange(side) * a.shape[1] // side).clip(0, a.shape[1] - 1)
    return a[rows[:, None], cols[None, :]]


def contour_panel(image: np.ndarray, label: np.ndarray, side: int = PANEL, label_set: LabelSet = CAMUS_LABELS) -> Image.Image:
    """The grey image with each structure's contour (pixels on its border, not along the frame) in its colour, side x side."""
    grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((side, side), Image.BILINEAR)
    rgb = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2).copy()
    lab = _nearest(np.asarray(label), side)
    for value in label_set.values:
        border = boundary(lab == value, image_edge=False)
        thick = border | np.pad(border, ((0, 0), (1, 0)))[:, :-1] | np.pad(border, ((1, 0), (0, 0)))[:-1, :]
        rgb[thick] = colour(value)[1]
    return Image.fromarray(rgb)


def compare_figure(
    images: np.ndarray, clean: np.ndarray, noisy: np.ndarray, caption: str, notes: list[str], label_set: LabelSet = CAMUS_LABELS
) -> Image.Image:
    """One row per sample: clean contours left, noisy right; `caption` on top, `notes[i]` on row i."""
    width, height = figure_size(len(images))
    fig = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(fig)
    draw.text((GAP, 6), caption, fill=(240, 240, 240))
    draw.text((GAP, 20), f"left: clean label    right: noisy label    {legend(label_set)}", fill=(170, 170, 170))
    for i in range(len(images)):
        top = CAPTION + i * (PANEL + GAP)
        for j, lab in enumerate((clean[i], noisy[i])):
            left = GAP + j * (PANEL + GAP)
            fig.paste(contour_panel(images[i], lab, label_set=label_set), (left, top))
        draw.text((GAP + 4, top + 4), notes[i], fill=(255, 255, 160))
    return fig


def grid_figure(
    images: np.ndarray, labels: np.ndarray, caption: str, notes: list[str], columns: int = 4, label_set: LabelSet = CAMUS_LABELS
) -> Image.Image:
    """Images with their label contours in a grid of `columns`; `caption` on top, `notes[i]` on panel i."""
    rows = -(-len(images) // columns)
    width, height = columns * PANEL + (columns + 1) * GAP, CAPTION + rows * (PANEL + GAP)
    fig = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(fig)
    draw.text((GAP, 6), caption, fill=(240, 240, 240))
    draw.text((GAP, 20), f"label contours: {legend(label_set)}", fill=(170, 170, 170))
    for i in range(len(images)):
        left, top = GAP + (i % columns) * (PANEL + GAP), CAPTION + (i // columns) * (PANEL + GAP)
        fig.paste(contour_panel(images[i], labels[i], label_set=label_set), (left, top))
        draw.text((left + 4, top + 4), notes[i], fill=(255, 255, 160))
    return fig


def save_png(fig: Image.Image, path: Path) -> None:
    """Write `fig` to `path` atomically (`bench.files`), so no half-written PNG is left."""
    with atomic_writer(path) as f:
        fig.save(f, format="PNG")
