"""echo-noise-bench: segmentation under noisy ground truth, starting with CAMUS echo.

The public API. Plugins in `methods/` and `datasets/` import only from here.
"""

__version__ = "0.1.0"

from bench.cache import CACHE_ENV, cache_fingerprint, cached, default_cache_dir
from bench.data import INFO_COLUMNS, LABEL_NAMES, SPLITS, STRUCTURES, Data, datasets, fingerprint, load_dataset
from bench.errors import BenchError
from bench.flagging import mixture_flags
from bench.labelmaps import clean_label_map
from bench.labelset import CAMUS_LABELS, LabelSet, Structure
from bench.method import (
    Batch,
    Corrector,
    Detector,
    History,
    Recipe,
    Refurbisher,
    Refurbishment,
    Scores,
    Step,
    Trainer,
    Trial,
    TrialInputs,
    correctors,
    detectors,
    methods,
    refurbishers,
    register_recipe,
    register_refurb_and_discard,
    trainers,
)
from bench.metrics import (
    detection_summary,
    dice_per_structure,
    evaluate_segmentation,
    pixel_localisation,
    refurbishment_summary,
    segmentation_summary,
    surface_metrics,
)
from bench.model import NUM_CLASSES, build_model
from bench.noise import NoiseGenerator, NoiseResult, NoiseSpec, Param, apply_noise, noises, parse_noise
from bench.protocols import Protocol, protocols
from bench.registry import Registry
from bench.training import overlap_dice, per_sample_loss, weighted_update
from bench.trial import run_trial

__all__ = [
    "CACHE_ENV",
    "CAMUS_LABELS",
    "INFO_COLUMNS",
    "LABEL_NAMES",
    "NUM_CLASSES",
    "SPLITS",
    "STRUCTURES",
    "Batch",
    "BenchError",
    "Corrector",
    "Data",
    "Detector",
    "History",
    "LabelSet",
    "NoiseGenerator",
    "NoiseResult",
    "NoiseSpec",
    "Param",
    "Protocol",
    "Recipe",
    "Refurbisher",
    "Refurbishment",
    "Registry",
    "Scores",
    "Step",
    "Structure",
    "Trainer",
    "Trial",
    "TrialInputs",
    "__version__",
    "apply_noise",
    "build_model",
    "cache_fingerprint",
    "cached",
    "clean_label_map",
    "correctors",
    "datasets",
    "default_cache_dir",
    "detection_summary",
    "detectors",
    "dice_per_structure",
    "evaluate_segmentation",
    "fingerprint",
    "load_dataset",
    "methods",
    "mixture_flags",
    "noises",
    "overlap_dice",
    "parse_noise",
    "per_sample_loss",
    "pixel_localisation",
    "protocols",
    "refurbishers",
    "refurbishment_summary",
    "register_recipe",
    "register_refurb_and_discard",
    "run_trial",
    "segmentation_summary",
    "surface_metrics",
    "trainers",
    "weighted_update",
]
