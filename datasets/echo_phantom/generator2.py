"""Generator 2 (frozen: the v1 protocols' records name it): the label is the anatomy the image was rendered from.

The cavity is the bullet profile, the myocardium a distance-transform band of
the wall thickness around it, the atrium an ellipse below the mitral plane;
speckle is complex Gaussian scatterers blurred by a separable PSF that widens
laterally with depth.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .anatomy import QUALITY, bullet
from .rendering import Backdrop, Image, Renderer, compress, largest, lv_echo, ramp, right_heart, surroundings


def setup(seed: int, p: int, v: int, pat: dict, view: dict, back: Backdrop) -> tuple[dict, dict]:
    """Nothing beyond the shared backdrop: generator 2 draws every image from the anatomy and its noise stream alone."""
    return {}, {}


def _kernel(sigma_px: float) -> np.ndarray:
    """A 1-D Gaussian PSF of `sigma_px` (at least 0.5 px), normalised to keep white noise's variance."""
    sigma_px = max(sigma_px, 0.5)
    r = max(1, math.ceil(3.0 * sigma_px))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    return (k / math.sqrt((k**2).sum())).astype(np.float32)


def render(pat: dict, view: dict, geo: dict, four: bool, acq: dict, back: Backdrop, noise: np.random.Generator) -> Image:
    """One image of generator 2, its label map and spacing."""
    q = QUALITY[pat["quality"]]
    f = back.frame
    size, dz, dx, sector = f.size, f.dz, f.dx, f.sector
    px = min(dz, dx)
    edge = max(1.0, 0.6 * px)  # soft-edge width in mm
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    tm, ann = pat["tm"], pat["annulus"]
    la_a, la_b, la_c = geo["la_a"], geo["la_b"], geo["la_c"]
    wb = geo["w_base"]

    fine = back.fine
    label = np.zeros((size, size), np.uint8)
    E = back.tissue.copy()
    blood = q["blood"]

    # ---- left atrium: ellipse below the mitral plane (label), blood with a thin wall (image)
    lab_box = f.box(L, la_c + la_b, -la_a, la_a, 8.0)
    u, v = f.uv(lab_box)
    du = u - la_c
    rho2 = (du / la_b) ** 2 + (v / la_a) ** 2
    atrium = largest((rho2 <= 1.0) & (u > L) & sector[lab_box])
    label[lab_box][atrium] = 3
    s_la = np.sqrt(du * du + v * v) * (1.0 - 1.0 / np.sqrt(np.maximum(rho2, 1e-6)))
    Eb = E[lab_box]
    Eb += 0.8 * np.exp(-0.5 * ((s_la - 1.5) / 1.2) ** 2) * (u > L + 2)
    la_in = ramp(0.6 * fine[0][lab_box] - s_la, edge) * ramp(u - L - 1.0, edge)
    Eb += (blood - Eb) * la_in

    if four:
        right_heart(E, f, pat, geo, edge, blood)

    # ---- LV: cavity (label), myocardium = cavity surroundings within the wall, above the mitral plane
    margin = T + view["peri"] + 10.0
    box = f.box(0.0, L, -R, R, margin)
    u, v = f.uv(box)
    av = np.abs(v)
    half_w = R * bullet(u / L, tm, ann)
    sec = sector[box]
    above = u <= L
    cav = largest((u >= 0) & above & (av <= half_w) & sec)
    d_out = ndimage.distance_transform_edt(~cav, sampling=(dz, dx))
    # at coarse grids keep at least the 8-neighbour ring so the band stays 4-connected
    myo = largest((~cav) & (d_out <= max(T, 1.001 * math.hypot(dz, dx))) & above & sec)
    lb = label[box]
    lb[cav] = 1
    lb[myo] = 2

    # visible endocardium / epicardium: jittered and trabeculated against the label
    d = (d_out - 0.5 * px).astype(np.float32)
    rows, cols = np.flatnonzero(cav.any(axis=1)), np.flatnonzero(cav.any(axis=0))
    cb = slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2)
    d_in = ndimage.distance_transform_edt(cav[cb], sampling=(dz, dx))
    d[cb] = np.where(cav[cb], 0.5 * px - d_in, d[cb])
    fb = lv_echo(E, back, box, u, v, d, pat, view, geo, four, edge)
    # mitral leaflets (closed, bowed into the atrium) and the annulus
    Eb = E[box]
    bow = L + acq["leaflet_bow"] * (1.0 - np.minimum((v / wb) ** 2, 1.0))
    Eb += 1.2 * np.exp(-0.5 * ((u - bow) / 0.8) ** 2) * (av < wb) * np.clip(0.6 + 0.5 * fb[1], 0, 1)
    Eb += 1.5 * np.exp(-0.5 * ((u - L) ** 2 + (av - wb - 1.5) ** 2) / 2.5**2)

    surroundings(E, back, pat, acq)

    # speckle: complex Gaussian scatterers filtered by the PSF (widens laterally with depth)
    field = noise.standard_normal((2, size, size), dtype=np.float32)
    field *= np.sqrt(E * 0.5, dtype=np.float32)
    field = ndimage.correlate1d(field, _kernel(view["ax_mm"] * q["psf"] / dz), axis=1, mode="reflect")
    bands = 4
    edges = np.linspace(0, size, bands + 1).astype(int)
    for b in range(bands):
        rows = slice(edges[b], edges[b + 1])
        depth_frac = (edges[b] + edges[b + 1]) / (2.0 * size)
        sig = view["lat_mm"] * q["psf"] * (0.8 + 1.4 * depth_frac) / dx
        field[:, rows] = ndimage.correlate1d(field[:, rows], _kernel(sig), axis=2, mode="reflect")
    inten = field[0] * field[0] + field[1] * field[1]

    label[back.outside] = 0
    return compress(inten, view, acq, back), label, np.array([dz, dx], np.float64)


RENDERER = Renderer(setup, render)
