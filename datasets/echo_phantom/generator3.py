"""Generator 3: the image shows the anatomy, the label is an expert's trace of it.

Generator 2 (frozen: the v1 protocols' records name it) labels the anatomy the
image was rendered from, so at 256 px a U-Net with enough data learns the
mapping nearly perfectly (Dice 0.97 on LV and atrium, measured on phantom-v1),
above what U-Nets reach on CAMUS. There the reference itself is uncertain:
cardiologists' traces of one image differ. Generator 3 models that: the label
is offset from the anatomy by smooth per-image fields (a bias plus slow
variation, sizes in `_TRACE_MM`) that nothing in the image reveals. Labelling
the anatomy exactly then scores Dice 0.957 / 0.883 / 0.916 (LV / MYO / LA,
256 px, 100 images): a ceiling no model can beat on average. It also hides the
atrium's wall and the mitral valve more, and is faster: distances are
analytic, speckle is uniform noise filtered by FFT.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import fft as sfft

from .anatomy import PHASES, QUALITY, rng
from .rendering import Backdrop, Image, Renderer, compress, fields, largest, lv_echo, ramp, right_heart, surroundings

#: annotator variability per label boundary, in mm: (bias sd, smooth-field sd)
_TRACE_MM = dict(endo=(0.9, 1.1), epi=(0.7, 0.9), la=(1.4, 1.6))
#: sd of the traced mitral plane's offset (mm) and tilt (mm per mm across)
_PLANE_MM, _PLANE_TILT = 1.5, 0.04
_MIN_WALL_MM = 3.0  # the traced myocardium is never thinner than this
_ANNOT, _LOOK = 5, 6  # random-stream tags of generator 3 (after the shared ones of anatomy.py)


def _bullet_distance(u: np.ndarray, v: np.ndarray, R: float, L: float, tm: float, ann: float) -> np.ndarray:
    """Signed distance (mm, > 0 outside) to the cavity `|v| <= R * bullet(u / L)`, to first order.

    The apical cap is the ellipse centred at (tm L, 0) with semi-axes tm L and R
    (distance = its implicit function over its gradient); the base is the
    quadratic profile, distance across it divided by sqrt(1 + slope^2). Within
    0.3 mm of an exact distance transform up to 5 mm from the border, and up to
    1 mm short at 10 mm out near the apex (the apical wall is a little thicker).
    """
    a = tm * L
    av = np.abs(v)
    qu, qv = (u - a) * (1.0 / a), av * (1.0 / R)
    k = np.sqrt(qu * qu + qv * qv)
    cap = (k - 1.0) * k / (np.sqrt((qu * (1.0 / a)) ** 2 + (qv * (1.0 / R)) ** 2) + 1e-9)
    t = np.clip(u * (1.0 / L), tm, 1.0) - tm
    c = (1.0 - ann) / (1.0 - tm) ** 2
    slope = (2.0 * R * c / L) * t
    base = (av - R * (1.0 - c * t * t)) / np.sqrt(1.0 + slope * slope)
    return np.where(u < a, cap, base).astype(np.float32)


def _ellipse_distance(du: np.ndarray, v: np.ndarray, b: float, a: float) -> np.ndarray:
    """Signed distance (mm, > 0 outside) to the ellipse (du/b)^2 + (v/a)^2 = 1, to first order."""
    qu, qv = du * (1.0 / b), v * (1.0 / a)
    k = np.sqrt(qu * qu + qv * qv)
    return ((k - 1.0) * k / (np.sqrt((qu * (1.0 / b)) ** 2 + (qv * (1.0 / a)) ** 2) + 1e-9)).astype(np.float32)


@lru_cache(maxsize=64)
def _exact_basis(size: int, k: int) -> np.ndarray:
    """The basis of `rendering.fields` in float64 from Python's math: the same on every CPU (numpy's SIMD exp is not)."""
    h = 1.2 / (k - 1)
    rows = []
    for i in range(size):
        pos = (i + 0.5) / size
        b = [math.exp(-0.5 * ((pos - (-0.1 + 1.2 * j / (k - 1))) / h) ** 2) for j in range(k)]
        norm = math.sqrt(math.fsum(x * x for x in b))
        rows.append([x / norm for x in b])
    return np.array(rows)


def _trace_field(coef: np.ndarray, size: int, box: tuple[slice, slice]) -> np.ndarray:
    """A smooth field like `fields` (one (k, k) `coef`) over `box`, bit-identical on any CPU.

    Labels depend on it, and a label must not change with the machine: plain
    multiply-adds in a fixed order, no BLAS (whose summation order varies).
    """
    b = _exact_basis(size, coef.shape[-1])
    rows, cols = b[box[0]], b[box[1]].astype(np.float32)
    along = np.zeros((rows.shape[0], coef.shape[-1]))  # the rows' basis combined per column function
    for i in range(coef.shape[-2]):
        along += rows[:, i, None] * coef[i][None, :]
    along = along.astype(np.float32)
    out = np.zeros((rows.shape[0], cols.shape[0]), np.float32)
    term = np.empty_like(out)
    for j in range(coef.shape[-1]):
        np.multiply(along[:, j, None], cols[None, :, j], out=term)
        out += term
    return out


def _dilate8(mask: np.ndarray) -> np.ndarray:
    """`mask` grown by its 8 neighbours (a 3 x 3 binary dilation, by shifted ORs: faster here)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def _trace(g: np.random.Generator) -> dict:
    """An expert's trace of one image: offsets (mm) of each boundary from the anatomy."""
    out = {}
    for name, (bias, field) in _TRACE_MM.items():
        out[name] = (float(g.normal(0.0, bias)), field * g.standard_normal((6, 6)))
    out["plane"] = (float(g.normal(0.0, _PLANE_MM)), float(g.normal(0.0, _PLANE_TILT)))
    return out


def _look(seed: int, p: int, v: int, pat: dict) -> dict:
    """Generator 3's extra image character of view `v`: how faint the atrium wall and the valve are."""
    g = rng(seed, p, _LOOK, v)
    poor = {"good": 0.0, "medium": 0.5, "poor": 1.0}[pat["quality"]]
    return dict(
        la_wall=float(g.uniform(0.15, 0.5) * (1.0 - 0.4 * poor)),
        la_gaps=g.standard_normal((1, 8, 8)),
        valve=float(g.uniform(0.25, 0.9) * (1.0 - 0.4 * poor)),
        la_haze=float(g.uniform(0.0, 0.04) * (1.0 + poor)),
    )


@lru_cache(maxsize=256)
def _psf_filters(size: int, ax_px: float, lat_px0: float, lat_px1: float) -> tuple[np.ndarray, np.ndarray]:
    """Transfer functions of the speckle PSF: axial (size, 1) and lateral per row (size, size).

    Gaussian PSFs (sigma in px), the lateral one widening linearly with depth from
    `lat_px0` at the top to `lat_px1` at the bottom; each normalised so filtered
    unit-variance white noise keeps unit variance.
    """
    f = np.fft.fftfreq(size).astype(np.float32)
    ax = np.exp(-2.0 * (math.pi * ax_px * f) ** 2)
    ax /= np.sqrt(np.mean(ax * ax))
    sig = lat_px0 + (lat_px1 - lat_px0) * (np.arange(size, dtype=np.float32) + 0.5) / size
    lat = np.exp(-2.0 * (math.pi * sig[:, None] * f[None, :]) ** 2)
    lat /= np.sqrt(np.mean(lat * lat, axis=1, keepdims=True))
    return ax[:, None].astype(np.complex64), lat.astype(np.complex64)


def _speckle(E: np.ndarray, filters: tuple[np.ndarray, np.ndarray], noise: np.random.Generator) -> np.ndarray:
    """Intensity of fully developed speckle over echogenicity `E`: scatterers (uniform, zero mean,
    unit variance per quadrature) weighted by sqrt(E), blurred by the PSF through FFTs."""
    size = E.shape[0]
    w = np.frombuffer(noise.bytes(2 * size * size), np.int8).astype(np.float32).view(np.complex64).reshape(size, size)
    w += 0.5 + 0.5j  # int8 has mean -0.5
    w *= np.sqrt(E * (0.5 / 5461.25))  # E is float32; 5461.25 = variance of a uniform byte
    ax, lat = filters
    w = sfft.fft(w, axis=1, overwrite_x=True)
    w *= lat
    w = sfft.ifft(w, axis=1, overwrite_x=True)
    w = sfft.fft(w, axis=0, overwrite_x=True)
    w *= ax
    w = sfft.ifft(w, axis=0, overwrite_x=True)
    return w.real * w.real + w.imag * w.imag


def setup(seed: int, p: int, v: int, pat: dict, view: dict, back: Backdrop) -> tuple[dict, dict]:
    """View `v`'s look and speckle PSF, shared by its phases, and each phase's expert trace (own random streams)."""
    look = _look(seed, p, v, pat)
    psf = QUALITY[pat["quality"]]["psf"]
    lat = view["lat_mm"] * psf / back.frame.dx
    filters = _psf_filters(back.frame.size, view["ax_mm"] * psf / back.frame.dz, 0.8 * lat, 2.2 * lat)
    return tuple(dict(look=look, trace=_trace(rng(seed, p, _ANNOT, v, ph)), filters=filters) for ph in range(len(PHASES)))


def render(
    pat: dict,
    view: dict,
    geo: dict,
    four: bool,
    acq: dict,
    back: Backdrop,
    noise: np.random.Generator,
    *,
    look: dict,
    trace: dict,
    filters: tuple[np.ndarray, np.ndarray],
) -> Image:
    """One image of generator 3, its traced label map and spacing (see the module docstring)."""
    q = QUALITY[pat["quality"]]
    f = back.frame
    size, dz, dx, sector = f.size, f.dz, f.dx, f.sector
    px = min(dz, dx)
    edge = max(1.0, 0.6 * px)
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    tm, ann = pat["tm"], pat["annulus"]
    la_a, la_b, la_c = geo["la_a"], geo["la_b"], geo["la_c"]
    wb = geo["w_base"]
    plane_off, plane_tilt = trace["plane"]

    def traced(name: str, box: tuple[slice, slice]) -> np.ndarray:
        bias, coef = trace[name]
        return bias + _trace_field(coef, size, box)

    fine = back.fine
    label = np.zeros((size, size), np.uint8)
    E = back.tissue.copy()
    blood = q["blood"]

    # ---- left atrium: the anatomy is an ellipse below the mitral plane; its wall is faint and broken
    lab_box = f.box(L, la_c + la_b, -la_a, la_a, 8.0)
    u, v = f.uv(lab_box)
    du = u - la_c
    s_la = _ellipse_distance(du, v, la_b, la_a)
    plane = L + plane_off + plane_tilt * v
    atrium = largest((s_la <= traced("la", lab_box)) & (u > plane) & sector[lab_box])
    label[lab_box][atrium] = 3
    Eb = E[lab_box]
    gaps = np.clip(0.3 + 0.7 * fields(look["la_gaps"], size, lab_box)[0], 0.0, 1.0)
    Eb += look["la_wall"] * gaps * np.exp(-0.5 * ((s_la - 1.5) / 1.2) ** 2) * (u > L + 2)
    la_in = ramp(0.6 * fine[0][lab_box] - s_la, edge) * ramp(u - L - 1.0, edge)
    Eb += (blood + look["la_haze"] - Eb) * la_in

    if four:
        right_heart(E, f, pat, geo, edge, blood)

    # ---- LV: anatomy from one analytic distance; the trace offsets endocardium, epicardium and plane
    margin = T + view["peri"] + 10.0
    box = f.box(0.0, L, -R, R, margin)
    u, v = f.uv(box)
    d = _bullet_distance(u, v, R, L, tm, ann)
    sec = sector[box]
    plane = L + plane_off + plane_tilt * v
    endo = traced("endo", box)
    cav = largest((d <= endo) & (u <= plane) & sec)
    band = d <= np.maximum(T + traced("epi", box), endo + _MIN_WALL_MM)
    band |= _dilate8(cav)  # at coarse grids too, the band closes around the cavity
    myo = largest(band & ~cav & (u <= plane) & sec)
    lb = label[box]
    lb[cav] = 1
    lb[myo] = 2

    # the image: visible endocardium / epicardium jittered and trabeculated against the anatomy
    fb = lv_echo(E, back, box, u, v, d, pat, view, geo, four, edge)
    # mitral leaflets and annulus: fainter and patchier than generator 2's
    Eb = E[box]
    av = np.abs(v)
    bow = L + acq["leaflet_bow"] * (1.0 - np.minimum((v / wb) ** 2, 1.0))
    valve = look["valve"] * np.clip(0.5 + 0.6 * fb[1], 0, 1)
    Eb += 1.2 * valve * np.exp(-0.5 * ((u - bow) / 0.8) ** 2) * (av < wb)
    Eb += 1.5 * valve * np.exp(-0.5 * ((u - L) ** 2 + (av - wb - 1.5) ** 2) / 2.5**2)

    surroundings(E, back, pat, acq)
    img = compress(_speckle(E, filters, noise), view, acq, back)
    label[back.outside] = 0
    return img, label, np.array([dz, dx], np.float64)


RENDERER = Renderer(setup, render)
