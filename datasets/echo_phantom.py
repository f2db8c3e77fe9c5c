"""Procedural CAMUS-like apical echo views: the dataset `echo-phantom`.

Every patient gets an anatomy in millimetres (LV long axis, diameter, wall,
tilt, left atrium, ejection fraction) and is imaged in an apical 2-chamber and
4-chamber view at end-diastole (ED) and end-systole (ES). The labels follow
the CAMUS convention (0 background, 1 LV cavity, 2 myocardium open at the
mitral plane, 3 left atrium below it); the image only partly shows them:
speckle, depth attenuation, near-field clutter, lateral wall dropout,
trabeculated / jittered borders and log compression, worse for poorer quality
grades. Two frozen rendering versions (`GENERATORS`): generator 2 labels the
anatomy exactly; generator 3 labels it as an expert traces it, with the
tracing uncertainty CAMUS's references have (see its section below).
Everything is vectorised numpy/scipy and deterministic: a sample depends only
on (seed, patient, view, phase, size, generator), never on which other
patients are generated.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage

from bench import BenchError, Data, cached, datasets

#: Generator versions (part of the fingerprint). A version's output never changes:
#: records name the phantom by its parameters and this number, so any change to
#: the rendering is a new version. 2 is the default because the v1 protocols, whose
#: records exist, name no generator; 3 is harder (CAMUS-level reference uncertainty).
GENERATORS = (2, 3)
DEFAULT_GENERATOR = 2

VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")
QUALITIES = ("good", "medium", "poor")
QUALITY_P = (0.35, 0.45, 0.20)

# Random-stream tags: keys are [seed, patient (1-based, 0 = dataset level), tag, ...].
_PATIENT, _VIEW, _ACQ, _NOISE, _SPLIT = 0, 1, 2, 3, 4

# What each quality grade does to an acquisition (see the module docstring).
#   drop: strength of lateral-wall dropout (0 none, 1 the wall vanishes)
#   clutter: near-field haze / reverberation amplitude (relative to myocardium)
#   noise_db: electronic noise floor at full depth, dB re myocardium
#   blood: blood-pool echo (side-lobe haze), relative to myocardium
#   tissue: echo of the tissue around the heart relative to myocardium (contrast)
#   psf: widening of the point-spread function (speckle grain and edge blur)
#   atten_db: range of residual (uncompensated) attenuation over the depth, dB
#   jitter: scale of the border jitter between visible edge and label edge
_QUALITY = {
    "good": dict(drop=0.55, clutter=0.25, noise_db=-36.0, blood=0.006, tissue=(0.18, 0.30), psf=1.0, atten_db=(4.0, 9.0), jitter=1.0),
    "medium": dict(drop=0.75, clutter=0.6, noise_db=-33.0, blood=0.012, tissue=(0.25, 0.40), psf=1.15, atten_db=(5.0, 10.0), jitter=1.3),
    "poor": dict(drop=0.9, clutter=1.0, noise_db=-30.0, blood=0.02, tissue=(0.30, 0.50), psf=1.35, atten_db=(6.0, 12.0), jitter=1.6),
}

_DEFAULT_PATIENTS = 500
_MIN_SIZE = 32  # smallest size at which every label map is CAMUS-valid (apex enclosed by myocardium)


# --------------------------------------------------------------------------- parameters


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _bullet(t: np.ndarray, tm: float, annulus: float) -> np.ndarray:
    """Half-width profile of the cavity along its axis, t = 0 apex .. 1 mitral plane.

    An elliptic cap up to the widest point `tm`, then a gentle quadratic narrowing
    to `annulus` (fraction of the maximum) at the mitral plane.
    """
    t = np.clip(t, 0.0, 1.0)
    cap = np.sqrt(np.clip(1.0 - (1.0 - t / tm) ** 2, 0.0, 1.0))
    base = 1.0 - (1.0 - annulus) * ((t - tm) / (1.0 - tm)) ** 2
    return np.where(t < tm, cap, base)


@lru_cache(maxsize=4096)
def _shape_integral(tm: float, annulus: float) -> float:
    t = (np.arange(4000) + 0.5) / 4000
    return float(np.mean(_bullet(t, tm, annulus) ** 2))


def _patient(seed: int, p: int) -> dict:
    """Anatomy and demographics of patient `p` (1-based), in mm."""
    g = _rng(seed, p, _PATIENT)
    sex = "M" if g.random() < 0.65 else "F"
    age = int(np.clip(round(g.normal(62, 14)), 18, 95))
    quality = QUALITIES[int(g.choice(3, p=QUALITY_P))]
    reduced = g.random() < 0.22
    ef = float(g.uniform(0.25, 0.45) if reduced else np.clip(g.normal(0.59, 0.06), 0.45, 0.72))
    male = 1.0 if sex == "M" else 0.0
    length = float(np.clip(g.normal(84 + 3 * male, 5.0), 75, 95))
    diameter = float(np.clip(g.normal(45 + 3 * male + 30 * max(0.0, 0.5 - ef), 4.5), 38, 58))
    wall = float(g.uniform(6, 11))
    short = float(g.uniform(0.05, 0.10) + 0.08 * ef)  # long-axis shortening at ES
    return dict(
        sex=sex,
        age=age,
        quality=quality,
        ef=ef,
        length=length,
        radius=diameter / 2,
        wall=wall,
        tm=float(g.uniform(0.55, 0.70)),
        annulus=float(g.uniform(0.70, 0.82)),
        long_ratio=1.0 - short,
        thicken=float(1.0 + g.uniform(0.25, 0.5) * ef / 0.6),
        la_width=float(g.uniform(30, 42)),
        la_length=float(g.uniform(35, 50)),
        la_grow=float(g.uniform(1.05, 1.15)),
        rv_width=float(g.uniform(24, 34)),
        rv_start=float(g.uniform(0.2, 0.35)),
        ra_width=float(g.uniform(30, 40)),
        ra_length=float(g.uniform(36, 48)),
    )


def _view(seed: int, p: int, v: int, pat: dict) -> dict:
    """How view `v` of patient `p` is acquired: field of view, pose, image character."""
    g = _rng(seed, p, _VIEW, v)
    q = _QUALITY[pat["quality"]]
    four = v == 1
    view = dict(
        depth=float(g.uniform(135, 160)),
        depth_slack=float(g.uniform(-10.0, 12.0)),
        half_angle=math.radians(float(g.uniform(37.5, 45.0))),
        apex_depth=max(float(g.uniform(20, 32)), pat["wall"] + 12.0),
        apex_x=float(g.uniform(2, 9) if four else g.uniform(-5, 5)),
        tilt=math.radians(float(g.uniform(-10, 5) if four else g.uniform(-8, 8))),
        width=float(g.uniform(0.95, 1.05)) if four else 1.0,
        tissue=float(g.uniform(*q["tissue"])),
        atten_db=float(g.uniform(*q["atten_db"])),
        lung=float(g.uniform(0.4, 0.85)),
        dyn_range=float(g.uniform(48, 56)),
        reverb=g.uniform(8, 30, size=2),
        jit_endo=float(g.uniform(0.6, 1.2) * q["jitter"]),
        trab=float(g.uniform(1.5, 3.0) * q["jitter"]),
        jit_epi=float(g.uniform(1.0, 2.0) * q["jitter"]),
        peri=float(g.uniform(2.0, 4.0)),
        peri_gain=float(g.uniform(3.0, 6.0) * (1.0 - 0.3 * (pat["quality"] == "poor"))),
        lat_mm=float(g.uniform(1.0, 1.3)),
        ax_mm=float(g.uniform(0.35, 0.5)),
        # coefficients of smooth random fields (size independent: same anatomy at any size)
        coarse=g.standard_normal((3, 8, 8)),  # tissue texture, dropout patches, clutter
        fine=g.standard_normal((3, 16, 16)),  # endocardial / epicardial jitter, tissue texture
        trabec=g.standard_normal((1, 32, 32)),  # trabeculation
    )
    _fit(pat, view)
    # deep enough for the atrium most of the time (CAMUS sometimes cuts its floor)
    st, ct = math.sin(view["tilt"]), math.cos(view["tilt"])
    la = _geometry(pat, view, 1)
    la_floor = view["apex_depth"] + (la["la_c"] + la["la_b"]) * ct + abs(la["la_a"] * st)
    view["depth"] = float(np.clip(max(view["depth"], la_floor + view.pop("depth_slack")), 135.0, 185.0))
    return view


def _fit(pat: dict, view: dict) -> None:
    """Move the heart (apex position, then sector width, then depth) until both
    phases' myocardium lies inside the sector with a few mm to spare."""
    t = np.linspace(0.0, 1.0, 41)
    for _ in range(12):
        st, ct = math.sin(view["tilt"]), math.cos(view["tilt"])
        tan = math.tan(view["half_angle"])
        worst = [-np.inf, -np.inf]  # how far past the (right, left) sector edge, mm
        for ph in (0, 1):
            g = _geometry(pat, view, ph)
            u = np.concatenate([t * g["length"], [-g["wall"]]])
            w = np.concatenate([g["radius"] * _bullet(t, pat["tm"], pat["annulus"]) + g["wall"], [0.0]]) + 4.0
            for k, sgn in enumerate((1.0, -1.0)):
                x = view["apex_x"] + u * st + sgn * w * ct
                z = view["apex_depth"] + u * ct - sgn * w * st
                worst[k] = max(worst[k], float(np.max(sgn * x - z * tan)))
        if max(worst) <= 0:
            return
        if min(worst) < 0:  # room on the other side: shift towards it
            shift = min(max(worst), -min(worst))
            view["apex_x"] -= shift if worst[0] > worst[1] else -shift
        if max(worst) > 0 and min(worst) >= -1.0:
            if view["half_angle"] < math.radians(45.0):
                view["half_angle"] = min(view["half_angle"] + math.radians(1.5), math.radians(45.0))
            else:
                view["apex_depth"] += 2.0


def _geometry(pat: dict, view: dict, phase: int) -> dict:
    """Cavity, wall and atrium of one phase (0 ED, 1 ES), in mm."""
    radius = pat["radius"] * view["width"]
    length = pat["length"]
    wall = pat["wall"]
    la_a, la_b = pat["la_width"] / 2, pat["la_length"] / 2
    if phase == 1:
        lr = pat["long_ratio"]
        length *= lr
        radius *= math.sqrt((1.0 - pat["ef"]) / lr)
        wall *= pat["thicken"]
        la_a *= pat["la_grow"]
        la_b *= pat["la_grow"] * 1.05
    w_base = radius * pat["annulus"]
    la_a = max(la_a, 1.08 * w_base)
    # place the atrium so that its width at the mitral plane equals the annulus
    la_c = length + la_b * math.sqrt(1.0 - (w_base / la_a) ** 2)
    volume = math.pi * radius**2 * length * _shape_integral(pat["tm"], pat["annulus"]) / 1000.0
    return dict(radius=radius, length=length, wall=wall, w_base=w_base, la_a=la_a, la_b=la_b, la_c=la_c, volume=volume)


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=64)
def _basis(size: int, k: int) -> np.ndarray:
    """(size, k) Gaussian bumps over (0, 1), rows normalised so a field has unit variance."""
    pos = (np.arange(size) + 0.5) / size
    centres = np.linspace(-0.1, 1.1, k)
    h = 1.2 / (k - 1)
    b = np.exp(-0.5 * ((pos[:, None] - centres[None, :]) / h) ** 2)
    b[b < 1e-6] = 0.0  # float32 denormals in the tails would make every product ~30x slower
    return (b / np.sqrt((b**2).sum(axis=1, keepdims=True))).astype(np.float32)


def _fields(coef: np.ndarray, size: int, box: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
    """Smooth unit-variance random fields (one per leading index of `coef`), over `box` of the image."""
    b = _basis(size, coef.shape[-1])
    rows, cols = b[box[0]], b[box[1]]
    # one 2-D matrix product per side: numpy's stacked matmul is several times slower here
    left = np.matmul(rows, coef.astype(np.float32))  # (..., h, k)
    out = left.reshape(-1, left.shape[-1]) @ cols.T
    return out.reshape(*left.shape[:-1], cols.shape[0])


def _kernel(sigma_px: float) -> np.ndarray:
    sigma_px = max(sigma_px, 0.5)
    r = max(1, math.ceil(3.0 * sigma_px))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    return (k / math.sqrt((k**2).sum())).astype(np.float32)


def _ramp(s: np.ndarray, width: float) -> np.ndarray:
    """Soft step 0 -> 1 as s goes from -width/2 to +width/2."""
    return np.clip(0.5 + s / width, 0.0, 1.0)


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


class _Frame:
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
        xa, za = self.x[:, box[1]] - self.ax, self.z[box[0]] - self.az
        return xa * self.st + za * self.ct, xa * self.ct - za * self.st


class _Backdrop:
    """What both phases of one acquisition share: the frame, the smooth random
    fields and every intensity layer that does not depend on the heart's phase.
    Computed once per view, it halves that part of the rendering cost."""

    def __init__(self, pat: dict, view: dict, size: int) -> None:
        q = _QUALITY[pat["quality"]]
        self.frame = f = _Frame(view, size)
        z, x = f.z, f.x
        self.coarse = _fields(view["coarse"], size)
        self.fine = _fields(view["fine"], size)
        tex, clut = self.coarse[0], self.coarse[2]
        # tissue around the heart: patchy, darker towards the sector sides (lung)
        side = np.abs(x) / (z * math.tan(f.half) + 1e-3)
        self.tissue = view["tissue"] * np.exp(0.5 * tex + 0.45 * self.fine[2]) * (1.0 - view["lung"] * _ramp(side - 0.75, 0.5))
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


def _right_heart(E: np.ndarray, f: _Frame, pat: dict, geo: dict, edge: float, blood: float) -> None:
    """Draw the 4CH view's right ventricle and atrium into `E`: dark, unlabelled, left of the septum."""
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    ra_a, ra_b = pat["ra_width"] / 2, pat["ra_length"] / 2
    ra_v = -(geo["la_a"] + 5.0 + ra_a)
    ra_u = L - 4.0 + 0.85 * ra_b
    rv0 = pat["rv_start"] * L
    rbox = f.box(rv0, ra_u + ra_b, ra_v - ra_a, 0.0, 8.0)
    u, v = f.uv(rbox)
    half_w = R * _bullet(u / L, pat["tm"], pat["annulus"])
    w_rv = pat["rv_width"] * np.sqrt(np.clip((u - rv0) / (L - rv0), 0, 1))
    rv_out = w_rv - (-v - half_w - T)  # distance to the free wall, inside > 0
    rv_in = (-v) - half_w - T - 1.5  # distance from the septum, inside > 0
    rv = _ramp(np.minimum(rv_out, rv_in) - 1.0, 2 * edge) * _ramp(L - 3.0 - u, edge) * (u > rv0)
    Eb = E[rbox]
    Eb += 0.6 * np.exp(-0.5 * ((rv_out + 1.5) / 1.5) ** 2) * ((u > rv0) & (u < L))  # RV free wall
    Eb += (blood - Eb) * rv
    rho_ra = np.sqrt(((u - ra_u) / ra_b) ** 2 + ((v - ra_v) / ra_a) ** 2)
    ra = _ramp((1.0 - rho_ra) * min(ra_a, ra_b), 2 * edge) * (u > L - 4.0)
    Eb += (blood - Eb) * ra


def _lv_echo(
    E: np.ndarray, back: _Backdrop, box: tuple[slice, slice], u: np.ndarray, v: np.ndarray, d: np.ndarray,
    pat: dict, view: dict, geo: dict, four: bool, edge: float,
) -> np.ndarray:
    """Draw the visible LV into `E[box]` from `d`, the signed distance (mm) to the endocardium:
    a wall echo fading where it runs along the beam (dropout), the endocardium
    jittered and trabeculated and the epicardium jittered against `d`, the
    pericardium, the blood pool. Returns the fine fields over `box` (for the valve)."""
    q = _QUALITY[pat["quality"]]
    f = back.frame
    R, L, T = geo["radius"], geo["length"], geo["wall"]
    gz, gx = np.gradient(d, f.dz, f.dx)
    zb, xb = f.z[box[0]], f.x[:, box[1]]
    cosb = np.abs(gz * zb + gx * xb) / (np.sqrt((gz * gz + gx * gx) * (zb * zb + xb * xb)) + 1e-6)
    drop = 1.0 - q["drop"] * (1.0 - np.minimum(cosb, 1.0)) ** 2 * np.clip(0.65 + 0.45 * back.coarse[1][box], 0.0, 1.0)
    trab = _fields(view["trabec"], f.size, box)[0]
    fb = back.fine[:, box[0], box[1]]
    j_endo = view["jit_endo"] * fb[0] - view["trab"] * np.maximum(trab, 0.0)
    j_epi = T + view["jit_epi"] * fb[1]
    base_soft = _ramp(L + 0.5 - u, edge)
    Eb = E[box]
    peri = _ramp(d - j_epi, edge) * _ramp(j_epi + view["peri"] - d, edge) * _ramp(L + 4.0 - u, 4.0)
    if four:
        peri *= _ramp(v + R * _bullet(u / L, pat["tm"], pat["annulus"]), 6.0)  # no pericardium along the septum
    blood = q["blood"]
    Eb += (view["peri_gain"] * drop - Eb) * peri
    Eb += (drop - Eb) * (_ramp(d - j_endo, edge) * _ramp(j_epi - d, 1.5 * edge) * base_soft)
    Eb += (blood - Eb) * (_ramp(j_endo - d, edge) * base_soft)
    Eb += 0.9 * drop * np.exp(-0.5 * ((d - j_endo) / 0.7) ** 2) * base_soft  # specular endocardium
    return fb


def _surroundings(E: np.ndarray, back: _Backdrop, pat: dict, acq: dict) -> None:
    """Add near-field clutter and reverberation to `E`, then residual attenuation and the noise floor."""
    c = _QUALITY[pat["quality"]]["clutter"] * acq["clutter"]
    E += (c * 0.5) * back.haze * back.haze_patch
    E[back.near] += c * back.reverb
    E *= back.attenuation
    E += back.noise_floor


def _compress(inten: np.ndarray, view: dict, acq: dict, back: _Backdrop) -> np.ndarray:
    """Log compression of speckle intensity to uint8 (myocardium at about 60 % grey at the nominal gain), black outside the sector."""
    dr = view["dyn_range"]
    img = np.log10(inten + 1e-12)
    img *= 10.0 * 255.0 / dr
    img += (acq["gain_db"] + 0.62 * dr) * 255.0 / dr
    np.clip(img, 0, 255, out=img)
    img[back.outside] = 0
    return img.astype(np.uint8)


def _render(
    pat: dict, view: dict, geo: dict, four: bool, acq: dict, back: _Backdrop, noise: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image, its label map and spacing."""
    q = _QUALITY[pat["quality"]]
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
    atrium = _largest((rho2 <= 1.0) & (u > L) & sector[lab_box])
    label[lab_box][atrium] = 3
    s_la = np.sqrt(du * du + v * v) * (1.0 - 1.0 / np.sqrt(np.maximum(rho2, 1e-6)))
    Eb = E[lab_box]
    Eb += 0.8 * np.exp(-0.5 * ((s_la - 1.5) / 1.2) ** 2) * (u > L + 2)
    la_in = _ramp(0.6 * fine[0][lab_box] - s_la, edge) * _ramp(u - L - 1.0, edge)
    Eb += (blood - Eb) * la_in

    if four:
        _right_heart(E, f, pat, geo, edge, blood)

    # ---- LV: cavity (label), myocardium = cavity surroundings within the wall, above the mitral plane
    margin = T + view["peri"] + 10.0
    box = f.box(0.0, L, -R, R, margin)
    u, v = f.uv(box)
    av = np.abs(v)
    half_w = R * _bullet(u / L, tm, ann)
    sec = sector[box]
    above = u <= L
    cav = _largest((u >= 0) & above & (av <= half_w) & sec)
    d_out = ndimage.distance_transform_edt(~cav, sampling=(dz, dx))
    # at coarse grids keep at least the 8-neighbour ring so the band stays 4-connected
    myo = _largest((~cav) & (d_out <= max(T, 1.001 * math.hypot(dz, dx))) & above & sec)
    lb = label[box]
    lb[cav] = 1
    lb[myo] = 2

    # visible endocardium / epicardium: jittered and trabeculated against the label
    d = (d_out - 0.5 * px).astype(np.float32)
    rows, cols = np.flatnonzero(cav.any(axis=1)), np.flatnonzero(cav.any(axis=0))
    cb = slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2)
    d_in = ndimage.distance_transform_edt(cav[cb], sampling=(dz, dx))
    d[cb] = np.where(cav[cb], 0.5 * px - d_in, d[cb])
    fb = _lv_echo(E, back, box, u, v, d, pat, view, geo, four, edge)
    # mitral leaflets (closed, bowed into the atrium) and the annulus
    Eb = E[box]
    bow = L + acq["leaflet_bow"] * (1.0 - np.minimum((v / wb) ** 2, 1.0))
    Eb += 1.2 * np.exp(-0.5 * ((u - bow) / 0.8) ** 2) * (av < wb) * np.clip(0.6 + 0.5 * fb[1], 0, 1)
    Eb += 1.5 * np.exp(-0.5 * ((u - L) ** 2 + (av - wb - 1.5) ** 2) / 2.5**2)

    _surroundings(E, back, pat, acq)

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
    return _compress(inten, view, acq, back), label, np.array([dz, dx], np.float64)


# --------------------------------------------------------------------------- generator 3
#
# Generator 2 (above, frozen: the v1 protocols' records name it) labels the
# anatomy the image was rendered from, so at 256 px a U-Net with enough data
# learns the mapping nearly perfectly (Dice 0.97 on LV and atrium, measured on
# phantom-v1), above what U-Nets reach on CAMUS. There the reference itself is
# uncertain: cardiologists' traces of one image differ. Generator 3 models that:
# the image shows the anatomy, the label is an expert's trace of it, offset from
# the anatomy by smooth per-image fields (a bias plus slow variation, sizes in
# _TRACE_MM) that nothing in the image reveals. Labelling the anatomy exactly
# then scores Dice 0.957 / 0.883 / 0.916 (LV / MYO / LA, 256 px, 100 images):
# a ceiling no model can beat on average. It also hides the atrium's wall and
# the mitral valve more, and is faster: distances are analytic, speckle is
# uniform noise filtered by FFT.

#: annotator variability per label boundary, in mm: (bias sd, smooth-field sd)
_TRACE_MM = dict(endo=(0.9, 1.1), epi=(0.7, 0.9), la=(1.4, 1.6))
#: sd of the traced mitral plane's offset (mm) and tilt (mm per mm across)
_PLANE_MM, _PLANE_TILT = 1.5, 0.04
_MIN_WALL_MM = 3.0  # the traced myocardium is never thinner than this
_ANNOT, _LOOK = 5, 6  # random-stream tags of generator 3 (after generator 2's)


def _bullet_distance(u: np.ndarray, v: np.ndarray, R: float, L: float, tm: float, ann: float) -> np.ndarray:
    """Signed distance (mm, > 0 outside) to the cavity `|v| <= R * _bullet(u / L)`, to first order.

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
    """`_basis` in float64 from Python's math: the same on every CPU (numpy's SIMD exp is not)."""
    h = 1.2 / (k - 1)
    rows = []
    for i in range(size):
        pos = (i + 0.5) / size
        b = [math.exp(-0.5 * ((pos - (-0.1 + 1.2 * j / (k - 1))) / h) ** 2) for j in range(k)]
        norm = math.sqrt(math.fsum(x * x for x in b))
        rows.append([x / norm for x in b])
    return np.array(rows)


def _trace_field(coef: np.ndarray, size: int, box: tuple[slice, slice]) -> np.ndarray:
    """A smooth field like `_fields` (one (k, k) `coef`) over `box`, bit-identical on any CPU.

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
    g = _rng(seed, p, _LOOK, v)
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


def _render3(
    pat: dict,
    view: dict,
    look: dict,
    geo: dict,
    four: bool,
    acq: dict,
    trace: dict,
    back: _Backdrop,
    filters: tuple[np.ndarray, np.ndarray],
    noise: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of generator 3, its traced label map and spacing (see the section comment)."""
    q = _QUALITY[pat["quality"]]
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
    atrium = _largest((s_la <= traced("la", lab_box)) & (u > plane) & sector[lab_box])
    label[lab_box][atrium] = 3
    Eb = E[lab_box]
    gaps = np.clip(0.3 + 0.7 * _fields(look["la_gaps"], size, lab_box)[0], 0.0, 1.0)
    Eb += look["la_wall"] * gaps * np.exp(-0.5 * ((s_la - 1.5) / 1.2) ** 2) * (u > L + 2)
    la_in = _ramp(0.6 * fine[0][lab_box] - s_la, edge) * _ramp(u - L - 1.0, edge)
    Eb += (blood + look["la_haze"] - Eb) * la_in

    if four:
        _right_heart(E, f, pat, geo, edge, blood)

    # ---- LV: anatomy from one analytic distance; the trace offsets endocardium, epicardium and plane
    margin = T + view["peri"] + 10.0
    box = f.box(0.0, L, -R, R, margin)
    u, v = f.uv(box)
    d = _bullet_distance(u, v, R, L, tm, ann)
    sec = sector[box]
    plane = L + plane_off + plane_tilt * v
    endo = traced("endo", box)
    cav = _largest((d <= endo) & (u <= plane) & sec)
    band = d <= np.maximum(T + traced("epi", box), endo + _MIN_WALL_MM)
    band |= _dilate8(cav)  # at coarse grids too, the band closes around the cavity
    myo = _largest(band & ~cav & (u <= plane) & sec)
    lb = label[box]
    lb[cav] = 1
    lb[myo] = 2

    # the image: visible endocardium / epicardium jittered and trabeculated against the anatomy
    fb = _lv_echo(E, back, box, u, v, d, pat, view, geo, four, edge)
    # mitral leaflets and annulus: fainter and patchier than generator 2's
    Eb = E[box]
    av = np.abs(v)
    bow = L + acq["leaflet_bow"] * (1.0 - np.minimum((v / wb) ** 2, 1.0))
    valve = look["valve"] * np.clip(0.5 + 0.6 * fb[1], 0, 1)
    Eb += 1.2 * valve * np.exp(-0.5 * ((u - bow) / 0.8) ** 2) * (av < wb)
    Eb += 1.5 * valve * np.exp(-0.5 * ((u - L) ** 2 + (av - wb - 1.5) ** 2) / 2.5**2)

    _surroundings(E, back, pat, acq)
    img = _compress(_speckle(E, filters, noise), view, acq, back)
    label[back.outside] = 0
    return img, label, np.array([dz, dx], np.float64)


# --------------------------------------------------------------------------- adapter


def _check(size: int, patients: int, seed: int, splits, generator: int) -> tuple[int, int, int]:
    if generator not in GENERATORS:  # also refuses True (== 1) and strings
        choices = ", ".join(map(str, GENERATORS))
        raise BenchError(f"echo-phantom: generator={generator!r} is unknown; use one of {choices}")
    if not isinstance(size, (int, np.integer)) or size < _MIN_SIZE:
        raise BenchError(
            f"echo-phantom: size={size!r} is invalid; use an integer of {_MIN_SIZE} px or more "
            "(below that the sector edge cuts the apical myocardium)"
        )
    if not isinstance(patients, (int, np.integer)) or patients < 3:
        raise BenchError(f"echo-phantom: patients={patients!r} is too few; use 3 or more (one per split)")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BenchError(f"echo-phantom: seed={seed!r} is invalid; use a non-negative integer")
    if splits is None:
        if patients == _DEFAULT_PATIENTS:
            return (400, 50, 50)
        val = max(1, round(patients * 0.1))
        return (patients - 2 * val, val, val)
    try:
        parts = tuple(int(s) for s in splits)
    except (TypeError, ValueError):
        parts = ()
    if len(parts) != 3 or any(s < 0 for s in parts):
        raise BenchError(f"echo-phantom: splits={splits!r} is invalid; give three non-negative patient counts (train, val, test)")
    if sum(parts) != patients:
        raise BenchError(f"echo-phantom: splits {parts} sum to {sum(parts)}, not patients={patients}; make them add up")
    return parts  # type: ignore[return-value]


@datasets.register("echo-phantom")
def echo_phantom(
    *,
    size: int,
    root: Path | None = None,
    patients: int = _DEFAULT_PATIENTS,
    seed: int = 0,
    splits: tuple[int, int, int] | None = None,
    generator: int = DEFAULT_GENERATOR,
    cache_dir: Path | None = None,
) -> Data:
    """CAMUS-like apical 2CH/4CH views at ED and ES, `patients` x 4 images of `size` x `size`.

    `root` is ignored. `splits` are patient counts (train, val, test); by default
    (400, 50, 50) for 500 patients, else 80 / 10 / 10 % (at least one each).
    `generator` picks the rendering version (`GENERATORS`; 3 is the harder one).
    Generated once per (size, patients, seed, splits, generator) and cached like
    CAMUS (`bench.cached`); the fingerprint hashes those parameters.
    """
    del root
    splits = _check(size, patients, seed, splits, generator)
    size, patients, seed, generator = int(size), int(patients), int(seed), int(generator)
    params = dict(size=size, patients=patients, seed=seed, splits=list(splits), generator_version=str(generator))
    return cached("echo-phantom", params, None, lambda: _generate(size, patients, seed, splits, generator), cache_dir)


def _generate(size: int, patients: int, seed: int, splits: tuple[int, int, int], generator: int = DEFAULT_GENERATOR) -> Data:
    """Render every image of the phantom (the uncached path of `echo_phantom`)."""
    order = _rng(seed, 0, _SPLIT, patients).permutation(patients)
    split_of = np.empty(patients, dtype=object)
    split_of[order[: splits[0]]] = "train"
    split_of[order[splits[0] : splits[0] + splits[1]]] = "val"
    split_of[order[splits[0] + splits[1] :]] = "test"

    n = patients * 4
    images = np.empty((n, size, size), np.uint8)
    labels = np.empty((n, size, size), np.uint8)
    spacing = np.empty((n, 2), np.float64)
    rows = []
    i = 0
    for p in range(1, patients + 1):
        pat = _patient(seed, p)
        for v, vname in enumerate(VIEWS):
            view = _view(seed, p, v, pat)
            geos = [_geometry(pat, view, ph) for ph in range(2)]
            back = _Backdrop(pat, view, size)
            if generator == 3:
                look = _look(seed, p, v, pat)
                psf = _QUALITY[pat["quality"]]["psf"]
                lat = view["lat_mm"] * psf / back.frame.dx
                filters = _psf_filters(size, view["ax_mm"] * psf / back.frame.dz, 0.8 * lat, 2.2 * lat)
            for ph, phname in enumerate(PHASES):
                geo = geos[ph]
                g = _rng(seed, p, _ACQ, v, ph)
                acq = dict(gain_db=float(g.normal(0.0, 1.5)), clutter=float(g.uniform(0.8, 1.2)), leaflet_bow=float(g.uniform(1.0, 4.0)))
                noise = _rng(seed, p, _NOISE, v, ph, size)
                if generator == 3:
                    trace = _trace(_rng(seed, p, _ANNOT, v, ph))
                    img, lab, sp = _render3(pat, view, look, geo, v == 1, acq, trace, back, filters, noise)
                else:
                    img, lab, sp = _render(pat, view, geo, v == 1, acq, back, noise)
                images[i], labels[i], spacing[i] = img, lab, sp
                rows.append(
                    dict(
                        id=f"patient{p:04d}_{vname}_{phname}",
                        patient=f"patient{p:04d}",
                        view=vname,
                        phase=phname,
                        split=split_of[p - 1],
                        quality=pat["quality"],
                        ef=pat["ef"],
                        age=pat["age"],
                        sex=pat["sex"],
                        edv_ml=geos[0]["volume"],
                        esv_ml=geos[1]["volume"],
                        lv_volume_ml=geo["volume"],
                        lv_length_mm=geo["length"],
                        lv_diameter_mm=2 * geo["radius"],
                        wall_mm=geo["wall"],
                        la_width_mm=2 * geo["la_a"],
                        la_length_mm=2 * geo["la_b"],
                        tilt_deg=math.degrees(view["tilt"]),
                        apex_depth_mm=view["apex_depth"],
                        apex_x_mm=view["apex_x"],
                        depth_mm=view["depth"],
                        sector_deg=2 * math.degrees(view["half_angle"]),
                    )
                )
                i += 1
    info = pd.DataFrame(rows)
    return Data(
        name="echo-phantom",
        images=images,
        labels=labels,
        spacing=spacing,
        info=info,
        fingerprint="",  # set by the cache from the parameters
        options=dict(size=size, patients=patients, seed=seed, splits=splits, generator_version=str(generator)),
    )
