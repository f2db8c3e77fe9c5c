"""echo-noise-bench: segmentation under noisy ground truth, starting with CAMUS echo.

The public API. Plugins in `methods/` and `datasets/` import only from here.
Names load on first use (PEP 562), so `import bench` alone (and with it the
command line's help) does not pay for torch, pandas or Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

# installs the plugin loader every registry lookup calls first (cheap: no plugin is loaded here)
from bench import plugins as _plugins  # noqa: F401

# `protocols` is also a submodule's name: importing bench.protocols sets bench.protocols to that module,
# which would hide the registry from __getattr__. Bound now, the registry wins (no torch, pandas or Ray there).
from bench.protocols import protocols as protocols

__version__ = "0.1.0"

#: public name -> the module that defines it; a new public name is one line here
_LAZY: dict[str, str] = {
    "CACHE_ENV": "bench.cache",
    "cache_fingerprint": "bench.cache",
    "cached": "bench.cache",
    "default_cache_dir": "bench.cache",
    "INFO_COLUMNS": "bench.data",
    "LABEL_NAMES": "bench.data",
    "SPLITS": "bench.data",
    "STRUCTURES": "bench.data",
    "Data": "bench.data",
    "datasets": "bench.data",
    "fingerprint": "bench.data",
    "image_to_uint8": "bench.data",
    "resize_image": "bench.data",
    "resize_labels": "bench.data",
    "load_dataset": "bench.data",
    "BenchError": "bench.errors",
    "atomic_writer": "bench.files",
    "mixture_flags": "bench.flagging",
    "high_population_flags": "bench.flagging",
    "flag_by_rule": "bench.flagging",
    "check_flag_rule": "bench.flagging",
    "clean_label_map": "bench.labelmaps",
    "make_valid": "bench.labelmaps",
    "CAMUS_LABELS": "bench.labelset",
    "LabelSet": "bench.labelset",
    "Structure": "bench.labelset",
    "Batch": "bench.method",
    "Corrector": "bench.method",
    "Detector": "bench.method",
    "History": "bench.method",
    "Recipe": "bench.method",
    "Refurbisher": "bench.method",
    "Refurbishment": "bench.method",
    "Scores": "bench.method",
    "Step": "bench.method",
    "Trainer": "bench.method",
    "Trial": "bench.method",
    "TrialInputs": "bench.method",
    "correctors": "bench.method",
    "detectors": "bench.method",
    "methods": "bench.method",
    "refurbishers": "bench.method",
    "register_recipe": "bench.method",
    "register_refurb_and_discard": "bench.method",
    "refurb_revisions": "bench.method",
    "DETECT_LATE": "bench.method",
    "GATED_REFURB": "bench.method",
    "recipe_for": "bench.method",
    "trainers": "bench.method",
    "detection_summary": "bench.metrics",
    "dice_per_structure": "bench.metrics",
    "evaluate_segmentation": "bench.metrics",
    "pixel_localisation": "bench.metrics",
    "refurbishment_summary": "bench.metrics",
    "segmentation_summary": "bench.metrics",
    "surface_metrics": "bench.metrics",
    "NUM_CLASSES": "bench.model",
    "build_model": "bench.model",
    "NoiseGenerator": "bench.noise",
    "NoiseResult": "bench.noise",
    "NoiseSpec": "bench.noise",
    "Param": "bench.noise",
    "apply_noise": "bench.noise",
    "noises": "bench.noise",
    "parse_noise": "bench.noise",
    "Protocol": "bench.protocols",
    "protocols": "bench.protocols",
    "Registry": "bench.registry",
    "fit": "bench.training",
    "overlap_dice": "bench.training",
    "per_sample_loss": "bench.training",
    "weighted_update": "bench.training",
    "run_trial": "bench.trial",
}

__all__ = sorted(["__version__", *_LAZY], key=lambda n: (not n.isupper(), not n[0].isupper(), n))  # constants, classes, the rest


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use; later lookups find it in the module globals."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names and the module's own attributes, loaded or not."""
    return sorted({*globals(), *__all__})
