"""What both frozen renderers share: smooth random fields, the frame, the backdrop,
the right heart, the LV's echo, the surroundings, log compression, and the
`Renderer` interface each generator version fills in.

Both generators call these; a change here moves both, so it is a new version of each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .anatomy import QUALITY, bullet

#: what a renderer returns for one acquisition: the uint8 image, its label map, the spacing (mm per row, per column)
Image = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Renderer:
    """One frozen generator version: `setup(seed, p, v, pat, view, back)`, once per view, gives each
    phase's (ED, ES) extra keyword arguments of `render(pat, view, geo, four, acq, back, noise, **extra)`."""

    setup: Callable[[int, int, int, dict, dict, Backdrop], tuple[dict, dict]]
    render: Callable[..., Image]


@lru_cache(maxsize=64)
def _basis(size: int, k: int) -> np.ndarray:
    """(size, k) Gaussian bumps over (0, 1), rows normalised so a field has unit variance."""
    pos = (np.arange(size) + 0.5) / size
    centres = np.linspace(-0.1, 1.1, k)
    h = 1.2 / (k - 1)
    b = np.exp(-0.5 * ((pos[:, None] - centres[None, :]) / h) ** 2)
    b[b < 1e-6] = 0.0  # float32 denormals in the tails would make every product ~30x slower
    return (b / np.sqrt((b**2).sum(axis=1, keepdims=True))).astype(np.float32)


def fields(coef: np.ndarray, size: int, box: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
    """Smooth unit-variance random fields (one per leading index of `coef`), over `box` of the image."""
    b = _basis(size, coef.shape[-1])
    rows, cols = b[box[0]], b[box[1]]
    # one 2-D matrix product per side: numpy's stacked matmul is several times slower here
    left = np.matmul(rows, coef.astype(np.float32))  # (..., h, k)
    out = left.reshape(-1, left.shape[-1]) @ cols.T
    return out.reshape(*left.shape[:-1], cols.shape[0])


def ramp(s: np.ndarray, width: float) -> np.ndarray:
    """Soft step 0 -> 1 as s goes from -width/2 to +width/2."""
    return np.clip(0.5 + s / width, 0.0, 1.0)


def largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of `mask` (a label map is one piece per structure)."""
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


class Frame:
    """Pixel-centre coordinates (mm) of one acquisition and its heart pose."""

    def __init__(self, view: dict, size: int) -> None:
        self.size = size
        self.depth, self.half = view["depth"], view["half_angle"]
        self.dz = self.depth / size
        self.dx = 2.0 * self.depth * math.sin(self.half) / size
        idx = np.arange(size, dtype=np.float64) + 0.5
        z64, x64 = (idx * self.dz)[:, None], ((idx - size / 2) * self.dx)[None, :]
        self.sector = (np.sqrt(x64 * x64 + z64 * z64) <= self.depth) & (np.abs(x64) <= z64 * math.tan(self.half))
        self.z, self.x = z64.astype(np.float32), x64.astype(np.float32)
        self.st, self.ct = math.sin(view["tilt"]), math.cos(view["tilt"])
        self.ax, self.az = view["apex_x"], view["apex_depth"]

    def at(self, u: float, v: float) -> tuple[float, float]:
        """(x, z) in mm of heart coordinates (u along the LV axis, v across)."""
        return self.ax + u * self.st + v * self.ct, self.az + u * self.ct - v * self.st

    def box(self, u0: float, u1: float, v0: float, v1: float, margin: float) -> tuple[slice, slice]:
        """Pixel box holding the heart-coordinate rectangle, grown by `margin` mm."""
        pts = [self.at(u, v) for u in (u0, u1) for v in (v0, v1)]
        xs, zs = [p[0] for p in pts], [p[1] for p in pts]
        n = self.size
        r0 = int(np.clip(math.floor((min(zs) - margin) / self.dz), 0, n))
        r1 = int(np.clip(math.ceil((max(zs) + margin) / self.dz) + 1, 0, n))
        c0 = int(np.clip(math.floor((min(xs) - margin) / self.dx + n / 2), 0, n))
        c1 = int(np.clip(math.ceil((max(xs) + margin) / self.dx + n / 2) + 1, 0, n))
        return slice(r0, max(r1, r0 + 1)), slice(c0, max(c1, c0 + 1))

    def uv(self, box: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Heart coordinates (u along the LV axis, v across, mm) of the pixels of `box`."""
        xa, za = self.x[:, box[1]] - self.ax, self.z[box[0]] - self.az
        return xa * self.st + za * self.ct, xa * self.ct - za * self.st


class Backdrop:
    """What both phases of one acquisition share: the frame, the smooth random
    fields and every intensity layer that does not depend on the heart's phase.
    Computed once per view, it halves that part of the rendering cost."""

    def __init__(self, pat: dict, view: dict, size: int) -> None:
        q = QUALITY[pat["quality"]]
        self.frame = f = Frame(view, size)
        z, x = f.z, f.x
        self.coarse = fields(view["coarse"], size)
        self.fine = fields(view["fine"], size)
        tex, clut = self.coarse[0], self.coarse[2]
        # tissue around the heart: patchy, darker towards the sector sides (lung)
        side = np.abs(x) / (z * math.tan(f.half) + 1e-3)
        self.tissue = view["tissue"] * np.exp(0.5 * tex + 0.45 * self.fine[2]) * (1.0 - view["lung"] * ramp(side - 0.75, 0.5))
        # near-field clutter and reverberation, per unit clutter strength
        self.haze = np.exp(-z / (view["apex_depth"] * 0.6 + 8.0))
        self.haze_patch = np.clip(0.6 + 0.5 * clut, 0.1, 2.0)
        self.near = slice(0, min(size, math.ceil((max(view["reverb"]) + 6.0) / f.dz)))
        r = np.sqrt(x * x + z[self.near] * z[self.near])
        self.reverb = 0.15 * np.exp(-0.5 * ((r - view["reverb"][0]) / 1.5) ** 2) + 0.1 * np.exp(-0.5 * ((r - view["reverb"][1]) / 1.5) ** 2)
        # residual attenuation after partial TGC, electronic noise rising with depth
        zn = z / f.depth
        self.attenuation = 10.0 ** (-(view["atten_db"] * zn) / 10.0)
        self.noise_floor = 10.0 ** ((q["noise_db"] + 8.0 * zn) / 10.0)
        self.outside = ~f.sector


def right_heart(E: np.ndarray, f: Frame, pat: dict, geo: dict, edge: float, blood: float) -> None:
    """Draw the 4CH view's right ventricle and atrium into `E`: dark, unlabelled, left of the septum."""
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    ra_a, ra_b = pat["ra_width"] / 2, pat["ra_length"] / 2
    ra_v = -(geo["la_a"] + 5.0 + ra_a)
    ra_u = L - 4.0 + 0.85 * ra_b
    rv0 = pat["rv_start"] * L
    rbox = f.box(rv0, ra_u + ra_b, ra_v - ra_a, 0.0, 8.0)
    u, v = f.uv(rbox)
    half_w = R * bullet(u / L, pat["tm"], pat["annulus"])
    w_rv = pat["rv_width"] * np.sqrt(np.clip((u - rv0) / (L - rv0), 0, 1))
    rv_out = w_rv - (-v - half_w - T)  # distance to the free wall, inside > 0
    rv_in = (-v) - half_w - T - 1.5  # distance from the septum, inside > 0
    rv = ramp(np.minimum(rv_out, rv_in) - 1.0, 2 * edge) * ramp(L - 3.0 - u, edge) * (u > rv0)
    Eb = E[rbox]
    Eb += 0.6 * np.exp(-0.5 * ((rv_out + 1.5) / 1.5) ** 2) * ((u > rv0) & (u < L))  # RV free wall
    Eb += (blood - Eb) * rv
    rho_ra = np.sqrt(((u - ra_u) / ra_b) ** 2 + ((v - ra_v) / ra_a) ** 2)
    ra = ramp((1.0 - rho_ra) * min(ra_a, ra_b), 2 * edge) * (u > L - 4.0)
    Eb += (blood - Eb) * ra


def lv_echo(
    E: np.ndarray, back: Backdrop, box: tuple[slice, slice], u: np.ndarray, v: np.ndarray, d: np.ndarray,
    pat: dict, view: dict, geo: dict, four: bool, edge: float,
) -> np.ndarray:
    """Draw the visible LV into `E[box]` from `d`, the signed distance (mm) to the endocardium:
    a wall echo fading where it runs along the beam (dropout), the endocardium
    jittered and trabeculated and the epicardium jittered against `d`, the
    pericardium, the blood pool. Returns the fine fields over `box` (for the valve)."""
    q = QUALITY[pat["quality"]]
    f = back.frame
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    gz, gx = np.gradient(d, f.dz, f.dx)
    zb, xb = f.z[box[0]], f.x[:, box[1]]
    cosb = np.abs(gz * zb + gx * xb) / (np.sqrt((gz * gz + gx * gx) * (zb * zb + xb * xb)) + 1e-6)
    drop = 1.0 - q["drop"] * (1.0 - np.minimum(cosb, 1.0)) ** 2 * np.clip(0.65 + 0.45 * back.coarse[1][box], 0.0, 1.0)
    trab = fields(view["trabec"], f.size, box)[0]
    fb = back.fine[:, box[0], box[1]]
    j_endo = view["jit_endo"] * fb[0] - view["trab"] * np.maximum(trab, 0.0)
    j_epi = T + view["jit_epi"] * fb[1]
    base_soft = ramp(L + 0.5 - u, edge)
    Eb = E[box]
    peri = ramp(d - j_epi, edge) * ramp(j_epi + view["peri"] - d, edge) * ramp(L + 4.0 - u, 4.0)
    if four:
        peri *= ramp(v + R * bullet(u / L, pat["tm"], pat["annulus"]), 6.0)  # no pericardium along the septum
    blood = q["blood"]
    Eb += (view["peri_gain"] * drop - Eb) * peri
    Eb += (drop - Eb) * (ramp(d - j_endo, edge) * ramp(j_epi - d, 1.5 * edge) * base_soft)
    Eb += (blood - Eb) * (ramp(j_endo - d, edge) * base_soft)
    Eb += 0.9 * drop * np.exp(-0.5 * ((d - j_endo) / 0.7) ** 2) * base_soft  # specular endocardium
    return fb


def surroundings(E: np.ndarray, back: Backdrop, pat: dict, acq: dict) -> None:
    """Add near-field clutter and reverberation to `E`, then residual attenuation and the noise floor."""
    c = QUALITY[pat["quality"]]["clutter"] * acq["clutter"]
    E += (c * 0.5) * back.haze * back.haze_patch
    E[back.near] += c * back.reverb
    E *= back.attenuation
    E += back.noise_floor


def compress(inten: np.ndarray, view: dict, acq: dict, back: Backdrop) -> np.ndarray:
    """Log compression of speckle intensity to uint8 (myocardium at about 60 % grey at the nominal gain), black outside the sector."""
    dr = view["dyn_range"]
    img = np.log10(inten + 1e-12)
    img *= 10.0 * 255.0 / dr
    img += (acq["gain_db"] + 0.62 * dr) * 255.0 / dr
    np.clip(img, 0, 255, out=img)
    img[back.outside] = 0
    return img.astype(np.uint8)
