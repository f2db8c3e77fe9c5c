"""echo-noise-bench: segmentation under noisy ground truth, starting with CAMUS echo.

The public API. Plugins in `methods/` and `datasets/` import only from here.
"""

__version__ = "0.1.0"

from bench.data import INFO_COLUMNS, LABEL_NAMES, SPLITS, STRUCTURES, Data, datasets, fingerprint, load_dataset
from bench.errors import BenchError
from bench.flagging import mixture_flags
from bench.method import Detector, Recipe, Refurbisher, Trainer, detectors, methods, refurbishers, register_recipe, trainers
from bench.metrics import detection_summary, dice_per_structure, segmentation_summary
from bench.model import NUM_CLASSES, build_model
from bench.noise import NoiseGenerator, NoiseResult, NoiseSpec, Param, apply_noise, noises, parse_noise
from bench.protocols import Protocol, protocols
from bench.registry import Registry
from bench.training import TrialState, per_sample_loss
from bench.trial import run_trial

__all__ = [
    "INFO_COLUMNS",
    "LABEL_NAMES",
    "NUM_CLASSES",
    "SPLITS",
    "STRUCTURES",
    "BenchError",
    "Data",
    "Detector",
    "NoiseGenerator",
    "NoiseResult",
    "NoiseSpec",
    "Param",
    "Protocol",
    "Recipe",
    "Refurbisher",
    "Registry",
    "Trainer",
    "TrialState",
    "__version__",
    "apply_noise",
    "build_model",
    "datasets",
    "detection_summary",
    "detectors",
    "dice_per_structure",
    "fingerprint",
    "load_dataset",
    "methods",
    "mixture_flags",
    "noises",
    "parse_noise",
    "per_sample_loss",
    "protocols",
    "refurbishers",
    "register_recipe",
    "run_trial",
    "segmentation_summary",
    "trainers",
]
