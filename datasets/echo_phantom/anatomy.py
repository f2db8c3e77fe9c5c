"""The phantom's anatomy: patients, how each view is acquired, and the heart's geometry per phase, in mm.

Shared by every generator version: a patient and a view depend only on (seed,
patient, view), never on the size or the rendering.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")
QUALITIES = ("good", "medium", "poor")
QUALITY_P = (0.35, 0.45, 0.20)

# Random-stream tags (generator 3 adds its own after these): keys are [seed, patient (1-based, 0 = dataset level), tag, ...].
STREAM_PATIENT, STREAM_VIEW, STREAM_ACQ, STREAM_NOISE, STREAM_SPLIT = 0, 1, 2, 3, 4

# What each quality grade does to an acquisition (see the package docstring).
#   drop: strength of lateral-wall dropout (0 none, 1 the wall vanishes)
#   clutter: near-field haze / reverberation amplitude (relative to myocardium)
#   noise_db: electronic noise floor at full depth, dB re myocardium
#   blood: blood-pool echo (side-lobe haze), relative to myocardium
#   tissue: echo of the tissue around the heart relative to myocardium (contrast)
#   psf: widening of the point-spread function (speckle grain and edge blur)
#   atten_db: range of residual (uncompensated) attenuation over the depth, dB
#   jitter: scale of the border jitter between visible edge and label edge
QUALITY = {
    "good": dict(drop=0.55, clutter=0.25, noise_db=-36.0, blood=0.006, tissue=(0.18, 0.30), psf=1.0, atten_db=(4.0, 9.0), jitter=1.0),
    "medium": dict(drop=0.75, clutter=0.6, noise_db=-33.0, blood=0.012, tissue=(0.25, 0.40), psf=1.15, atten_db=(5.0, 10.0), jitter=1.3),
    "poor": dict(drop=0.9, clutter=1.0, noise_db=-30.0, blood=0.02, tissue=(0.30, 0.50), psf=1.35, atten_db=(6.0, 12.0), jitter=1.6),
}


def rng(*key: int) -> np.random.Generator:
    """The random stream of `key`: each (seed, patient, tag, ...) draws independently of all others."""
    return np.random.default_rng([int(k) for k in key])


def bullet(t: np.ndarray, tm: float, annulus: float) -> np.ndarray:
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
    return float(np.mean(bullet(t, tm, annulus) ** 2))


def patient(seed: int, p: int) -> dict:
    """Anatomy and demographics of patient `p` (1-based), in mm."""
    g = rng(seed, p, STREAM_PATIENT)
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


def view(seed: int, p: int, v: int, pat: dict) -> dict:
    """How view `v` of patient `p` is acquired: field of view, pose, image character."""
    g = rng(seed, p, STREAM_VIEW, v)
    q = QUALITY[pat["quality"]]
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
    la = geometry(pat, view, 1)
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
            g = geometry(pat, view, ph)
            u = np.concatenate([t * g["length"], [-g["wall"]]])
            w = np.concatenate([g["radius"] * bullet(t, pat["tm"], pat["annulus"]) + g["wall"], [0.0]]) + 4.0
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


def geometry(pat: dict, view: dict, phase: int) -> dict:
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
