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
tracing uncertainty CAMUS's references have (see `generator3`).
Everything is vectorised numpy/scipy and deterministic: a sample depends only
on (seed, patient, view, phase, size, generator), never on which other
patients are generated.

This module is the adapter; the parts are `anatomy` (patients, views,
geometry), `rendering` (what both renderers share) and one module per frozen
renderer (`generator2`, `generator3`), picked from `RENDERERS`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench import CAMUS_LABELS, BenchError, Data, cached, datasets

from . import anatomy, generator2, generator3
from .anatomy import PHASES, STREAM_ACQ, STREAM_NOISE, STREAM_SPLIT, VIEWS
from .rendering import Backdrop, Renderer

#: The frozen rendering versions, by generator number: each version's setup and render.
RENDERERS: dict[int, Renderer] = {2: generator2.RENDERER, 3: generator3.RENDERER}

#: Generator versions (part of the fingerprint). A version's output never changes:
#: records name the phantom by its parameters and this number, so any change to
#: the rendering is a new version. 2 is the default because the v1 protocols, whose
#: records exist, name no generator; 3 is harder (CAMUS-level reference uncertainty).
GENERATORS = tuple(RENDERERS)
DEFAULT_GENERATOR = 2

_DEFAULT_PATIENTS = 500
_MAX_PATIENTS = 10_000  # 40,000 images; at 256 px about 5 GB of images and labels
_MIN_SIZE = 32  # smallest size at which every label map is CAMUS-valid (apex enclosed by myocardium)


def _check(size: int, patients: int, seed: int, splits, generator: int) -> tuple[int, int, int]:
    """The splits (train, val, test) the options give, or a BenchError naming the bad option and its fix."""
    if generator not in GENERATORS:  # also refuses True (== 1) and strings
        choices = ", ".join(map(str, GENERATORS))
        raise BenchError(f"echo-phantom: generator={generator!r} is unknown; use one of {choices}")
    if not isinstance(size, (int, np.integer)) or size < _MIN_SIZE:
        raise BenchError(
            f"echo-phantom: size={size!r} is invalid; use an integer of {_MIN_SIZE} px or more "
            "(below that the sector edge cuts the apical myocardium)"
        )
    if not isinstance(patients, (int, np.integer)) or isinstance(patients, bool):
        raise BenchError(f"echo-phantom: patients={patients!r} is not a whole number; use 3 to {_MAX_PATIENTS}")
    if patients < 3:
        raise BenchError(f"echo-phantom: patients={patients!r} is too few; use 3 or more (one per split)")
    if patients > _MAX_PATIENTS:
        raise BenchError(f"echo-phantom: patients={patients!r} is too many; use at most {_MAX_PATIENTS} (CAMUS has 500)")
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
    order = anatomy.rng(seed, 0, STREAM_SPLIT, patients).permutation(patients)
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
    renderer = RENDERERS[generator]
    for p in range(1, patients + 1):
        pat = anatomy.patient(seed, p)
        for v, vname in enumerate(VIEWS):
            view = anatomy.view(seed, p, v, pat)
            geos = [anatomy.geometry(pat, view, ph) for ph in range(2)]
            back = Backdrop(pat, view, size)
            extras = renderer.setup(seed, p, v, pat, view, back)
            for ph, phname in enumerate(PHASES):
                geo = geos[ph]
                g = anatomy.rng(seed, p, STREAM_ACQ, v, ph)
                acq = dict(gain_db=float(g.normal(0.0, 1.5)), clutter=float(g.uniform(0.8, 1.2)), leaflet_bow=float(g.uniform(1.0, 4.0)))
                noise = anatomy.rng(seed, p, STREAM_NOISE, v, ph, size)
                img, lab, sp = renderer.render(pat, view, geo, v == 1, acq, back, noise, **extras[ph])
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
        label_set=CAMUS_LABELS,  # CAMUS's values: 0 background, 1 LV cavity, 2 myocardium, 3 left atrium
        options=dict(size=size, patients=patients, seed=seed, splits=splits, generator_version=str(generator)),
    )
