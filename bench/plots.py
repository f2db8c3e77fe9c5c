"""Small PIL drawings: label contours over echo images, side by side (no matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.errors import BenchError

#: side of one panel in pixels (images and labels are scaled to it)
PANEL = 256
#: space between and around panels
GAP = 8
#: height of the caption band at the top
CAPTION = 36
#: contour colour per structure: LV cavity red, myocardium green, left atrium blue
COLOURS: dict[int, tuple[int, int, int]] = {1: (255, 64, 64), 2: (64, 224, 64), 3: (64, 160, 255)}


def figure_size(rows: int) -> tuple[int, int]:
    """(width, height) of a `compare_figure` with `rows` samples: two panels per row, gaps, caption band."""
    return 2 * PANEL + 3 * GAP, CAPTION + rows * (PANEL + GAP)


def _nearest(a: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D array to side x side."""
    rows = (np.arange(side) * a.shape[0] // side).clip(0, a.shape[0] - 1)
    cols = (np.arange(side) * a.shape[1] // side).clip(0, a.shape[1] - 1)
    return a[rows[:, None], cols[None, :]]


def contour_panel(image: np.ndarray, label: np.ndarray, side: int = PANEL) -> Image.Image:
    """The grey image with each structure's contour (pixels on its border) in its colour, side x side."""
    grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((side, side), Image.BILINEAR)
    rgb = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2).copy()
    lab = _nearest(np.asarray(label), side)
    pad = np.pad(lab, 1, mode="edge")
    for value, colour in COLOURS.items():
        m = pad == value
        inner = m[1:-1, 1:-1]
        border = inner & ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
        thick = border | np.pad(border, ((0, 0), (1, 0)))[:, :-1] | np.pad(border, ((1, 0), (0, 0)))[:-1, :]
        rgb[thick] = colour
    return Image.fromarray(rgb)


def compare_figure(images: np.ndarray, clean: np.ndarray, noisy: np.ndarray, caption: str, notes: list[str]) -> Image.Image:
    """One row per sample: clean contours left, noisy right; `caption` on top, `notes[i]` on row i."""
    width, height = figure_size(len(images))
    fig = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(fig)
    draw.text((GAP, 6), caption, fill=(240, 240, 240))
    draw.text((GAP, 20), "left: clean label    right: noisy label    red LV, green myocardium, blue atrium", fill=(170, 170, 170))
    for i in range(len(images)):
        top = CAPTION + i * (PANEL + GAP)
        for j, lab in enumerate((clean[i], noisy[i])):
            left = GAP + j * (PANEL + GAP)
            fig.paste(contour_panel(images[i], lab), (left, top))
        draw.text((GAP + 4, top + 4), notes[i], fill=(255, 255, 160))
    return fig


def grid_figure(images: np.ndarray, labels: np.ndarray, caption: str, notes: list[str], columns: int = 4) -> Image.Image:
    """Images with their label contours in a grid of `columns`; `caption` on top, `notes[i]` on panel i."""
    rows = -(-len(images) // columns)
    width, height = columns * PANEL + (columns + 1) * GAP, CAPTION + rows * (PANEL + GAP)
    fig = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(fig)
    draw.text((GAP, 6), caption, fill=(240, 240, 240))
    draw.text((GAP, 20), "label contours: red LV cavity, green myocardium, blue left atrium", fill=(170, 170, 170))
    for i in range(len(images)):
        left, top = GAP + (i % columns) * (PANEL + GAP), CAPTION + (i // columns) * (PANEL + GAP)
        fig.paste(contour_panel(images[i], labels[i]), (left, top))
        draw.text((left + 4, top + 4), notes[i], fill=(255, 255, 160))
    return fig


def check_png_path(path: Path) -> None:
    """A BenchError unless `path` ends in .png and its folder exists (checked before any work)."""
    if path.suffix.lower() != ".png":
        raise BenchError(f"--out {path} must end in .png")
    if not path.parent.is_dir():
        raise BenchError(f"--out {path}: folder {path.parent} does not exist; create it or pick another path")


def save_png(fig: Image.Image, path: Path) -> None:
    """Write `fig` to `path` via a temporary file and a rename, so no half-written PNG is left."""
    tmp = path.with_name(path.name + ".part")
    try:
        fig.save(tmp, format="PNG")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
