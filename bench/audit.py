"""`bench audit`: rank the cases of a labelled dataset by how likely their label is wrong, with out-of-sample scores.

Why out of sample: a model trained on a wrong label learns it, so its loss on that label says little; a model
that never saw the case judges it fairly. The audit therefore cross-fits: the cases are cut into K folds
grouped by patient (every frame of one patient in one fold, so a patient's other frames never teach the model
the very label it judges), and for each fold the suite's U-Net is trained from scratch with the `baseline`
recipe on the other K - 1 folds and predicts the held-out fold. Every case is scored by one model, the one
that did not see it (`Audit.trained_on` keeps which ids each fold model saw).

Detectors (`AUDIT_DETECTORS`, higher = more suspicious), all from the held-out softmax P and the given label y:

- `loss`: the protocol's per-sample loss under the given label (CE + soft Dice, `bench.per_sample_loss` on log P);
- `confident`: confident learning (native, `methods/confident.py`): fraction of pixels that are label issues,
  with the per-class thresholds computed over the out-of-sample probabilities of ALL cases, as cleanlab asks;
- `softmin`: 1 - cleanlab's softmin label quality of p(y) per pixel (temperature 0.1, `methods/confident.py`);
- `dice`: 1 - mean structure Dice of the given label against the held-out prediction (argmax);
- `entropy`: mean pixel entropy of the held-out prediction (ignores the label: it finds hard images, not wrong
  labels; offered because the board has it, not in the default set).

Detectors that cannot score out of sample (`IN_SAMPLE_ONLY`): VOG, forgetting, co-teaching and ADELE read the
training dynamics (gradients, forgetting events, sample selections, corrections) of a model trained ON the
sample; a held-out model has none for it. The oracle reads the noise truth and is a reference, not a detector.

Ensemble: the mean over the chosen detectors of each case's normalised rank ((average rank - 1) / (N - 1), 0 =
least, 1 = most suspicious), so detectors on different scales weigh the same; the audit's rank (1 = review
first) sorts by it, ties by case id. Flagged: the top N (`--top`, the review budget).

`--inject SPEC` corrupts a copy of the labels first with a registered noise generator (`bench.apply_noise`, seed
`--seed`), and scores detection against that known truth (`bench.detection_summary` at budget N).
Outputs and the report: `bench/audit_output.py`, `bench/audit_report.py`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bench.data import Data, fingerprint
from bench.errors import BenchError
from bench.labelmaps import dice_per_structure
from bench.method import Trial, TrialInputs, read_only, recipe_for
from bench.metrics import detection_summary
from bench.noise import apply_noise, parse_noise
from bench.protocols import Protocol, protocols
from bench.training import fit, per_sample_loss

#: detector -> what it scores (higher = more suspicious)
AUDIT_DETECTORS: dict[str, str] = {
    "loss": "the protocol's loss (CE + soft Dice) of the held-out prediction under the given label",
    "confident": "confident learning: fraction of label-issue pixels (per-class thresholds over all out-of-sample probabilities)",
    "softmin": "1 - softmin label quality (cleanlab's, temperature 0.1) of the held-out p(given label) per pixel",
    "dice": "1 - mean structure Dice of the given label against the held-out prediction",
    "entropy": "mean pixel entropy of the held-out prediction (ignores the label: finds hard images)",
}
DEFAULT_DETECTORS = ("loss", "confident", "softmin")
#: board detectors the audit cannot use, and why
IN_SAMPLE_ONLY: dict[str, str] = {
    "vog": "it reads the input gradients of a model trained on the sample over training",
    "forgetting": "it counts forgetting events of the sample during training on it",
    "coteaching": "it reads which samples two networks selected while training on them",
    "adele": "it reads the corrections made while training on the sample",
    "oracle": "it reads the noise truth (a reference, not a detector; use --inject to measure detection)",
    "confident-cv": "the audit's 'confident' is already out of sample (cross-fitted): use confident",
}
#: the protocol whose model and optimiser settings an audit trains with (--size and --epochs override); v1, the
#: settings its measured timings and detection numbers (README) were made with
BASE_PROTOCOL = "phantom-quick@v1"
#: the gate of the proposed labels: a pixel changes only where the held-out model gives another class more than this
PROPOSE_THRESHOLD = 0.9
SOFTMIN_TEMPERATURE = 0.1
#: cases scored at once (bounds the float64 temporaries of the detectors)
CHUNK = 256


def parse_detectors(text: str) -> tuple[str, ...]:
    """The detector names of a comma list, each checked; an in-sample-only or unknown name is a BenchError saying why."""
    names = tuple(s.strip() for s in text.split(","))
    if not all(names):
        raise BenchError(f"--detector '{text}' has an empty item; write a comma list such as loss,confident")
    known = ", ".join(AUDIT_DETECTORS)
    for name in names:
        if name in IN_SAMPLE_ONLY:
            raise BenchError(f"detector '{name}' cannot score out of sample: {IN_SAMPLE_ONLY[name]}; audit detectors: {known}")
        if name not in AUDIT_DETECTORS:
            close = difflib.get_close_matches(name, [*AUDIT_DETECTORS, *IN_SAMPLE_ONLY], n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise BenchError(f"unknown audit detector '{name}'; {hint}audit detectors: {known}")
    if len(set(names)) != len(names):
        raise BenchError(f"--detector '{text}' names a detector twice; give each once")
    return names


@dataclass(frozen=True)
class AuditSettings:
    """Everything that moves an audit's numbers (recorded in audit.json; the fold files' key hashes them)."""

    dataset: str
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    folds: int = 3
    size: int = 96
    epochs: int = 12
    seed: int = 0
    top: int = 20
    inject: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    threshold: float = PROPOSE_THRESHOLD

    def protocol(self) -> Protocol:
        """The fold models' protocol: `BASE_PROTOCOL`'s model and optimiser, this dataset, --size and --epochs."""
        base = protocols.get(BASE_PROTOCOL)
        return dataclasses.replace(
            base,
            name="audit",
            description=f"bench audit: {BASE_PROTOCOL}'s U-Net and optimiser, {self.size} px, {self.epochs} epochs",
            dataset=self.dataset,
            image_size=self.size,
            train_patients=None,
            val_patients=None,
            test_patients=None,
            epochs=self.epochs,
            seeds=(self.seed,),
            noise_grid=(self.inject or "none",),
            dataset_options=dict(self.options),
        )


def settings_text(settings: AuditSettings, n_cases: int, n_patients: int) -> str:
    """The protocol-like settings in a few lines, printed before an audit starts."""
    p = settings.protocol()
    return (
        f"audit of {settings.dataset}: {n_cases} cases of {n_patients} patients, {settings.folds}-fold cross-fitting "
        f"grouped by patient, seed {settings.seed}\n"
        f"fold model: U-Net {p.encoder}, decoder {list(p.decoder_channels)}, {p.image_size} px, {p.epochs} epochs, "
        f"batch {p.batch_size}, Adam lr {p.lr:g}, wd {p.weight_decay:g}, loss CE + {p.dice_weight:g} soft Dice "
        f"({BASE_PROTOCOL}'s settings; recipe baseline)\n"
        f"detectors: {', '.join(settings.detectors)}; ensemble = mean normalised rank; review budget (--top) "
        f"{settings.top}; proposed labels gated at p > {settings.threshold:g}"
        + (f"\ninjected noise: {settings.inject} (seed {settings.seed})" if settings.inject else "")
    )


# --------------------------------------------------------------------------- folds


def assign_folds(patients: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of every case, grouped by patient: patients in a seeded random order, each to the fold holding
    the fewest cases so far (lowest fold on ties), so folds are balanced in cases and no patient is split."""
    uniq, inverse, counts = np.unique(np.asarray(patients, dtype=str), return_inverse=True, return_counts=True)
    if not 2 <= k <= len(uniq):
        raise BenchError(f"--folds {k} needs 2 to {len(uniq)} folds here ({len(uniq)} patients); pick a K in that range")
    fold_of = np.empty(len(uniq), dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    for p in np.random.default_rng([seed, 17017]).permutation(len(uniq)):  # per patient, not per pixel: bookkeeping
        fold_of[p] = int(np.argmin(sizes))
        sizes[fold_of[p]] += counts[p]
    return fold_of[inverse]


def fold_seed(seed: int, fold: int) -> int:
    """The torch seed of fold `fold`'s model and batches (each fold its own, so a resumed fold trains the same)."""
    return seed * 7919 + 211 + fold


def fold_key(settings: AuditSettings, data: Data, given: np.ndarray, seen: np.ndarray, fold: int) -> str:
    """What a finished fold depends on, hashed: the protocol, data, given labels, the ids trained on and the seed."""
    ids = tuple(data.ids[i] for i in seen)
    return fingerprint(settings.protocol().hash, data.fingerprint, given, ids, settings.seed, fold, torch.__version__)


def train_fold(
    data: Data,
    given: np.ndarray,
    seen: np.ndarray,
    held: np.ndarray,
    protocol: Protocol,
    seed: int,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[torch.Tensor, float]:
    """Train a fresh U-Net (recipe `baseline`) on the cases `seen` and return its softmax on the cases `held`
    (float16-rounded float32, so a resumed fold gives the same numbers) and the training seconds.

    The model's seed and batch order come from a forked RNG, so the caller's random stream is untouched.
    """
    images = torch.from_numpy(data.images).float().div_(255.0).unsqueeze(1)
    inputs = TrialInputs(
        protocol=protocol,
        seed=seed,
        images=images[torch.from_numpy(seen)],
        given=read_only(given[seen]),
        ids=tuple(data.ids[i] for i in seen),
        info=data.info.iloc[seen].reset_index(drop=True),
        label_set=data.label_set,
        device=torch.device("cpu"),
        spacing=read_only(np.asarray(data.spacing[seen], dtype=np.float64)),
    )
    labels = torch.from_numpy(given[seen].astype(np.int64))
    trial = Trial(inputs, labels, torch.ones(len(seen)), torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = fit(trial, recipe_for("baseline", protocol), on_epoch=on_epoch)
    probs = trial.predict(images[torch.from_numpy(held)])
    return probs.half().float(), result.train_s


def measure_rate(data: Data, protocol: Protocol, steps: int = 2) -> float:
    """Training images per second of one fold model on this machine: `steps` timed steps after one warm-up, on one
    batch of the data (forked RNG; about 1 s at 96 px). For the time estimate printed before an audit starts."""
    from bench.model import build_model

    n = min(protocol.batch_size, len(data))
    x = torch.from_numpy(data.images[:n]).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(data.labels[:n].astype(np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(protocol, "cpu", data.label_set.num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=protocol.lr)
        model.train()
        for i in range(steps + 1):
            if i == 1:
                t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            per_sample_loss(model(x), y, protocol.dice_weight).mean().backward()
            optimizer.step()
    return steps * n / max(time.perf_counter() - t0, 1e-9)


# --------------------------------------------------------------------------- scores


def normalised_ranks(scores: np.ndarray) -> np.ndarray:
    """(average rank - 1) / (N - 1) of each score, ties sharing their mean rank: 0 the lowest, 1 the highest."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < 2:
        return np.zeros(len(scores))
    return (rankdata(scores, method="average") - 1.0) / (len(scores) - 1.0)


def score_cases(
    probs: torch.Tensor, given: np.ndarray, detectors: Sequence[str], dice_weight: float, label_set: Any
) -> dict[str, np.ndarray]:
    """Each detector's score (N,) float64 from the held-out softmax `probs` (N, C, H, W) and the given labels (N, H, W).

    Batched over cases in chunks of `CHUNK`; confident learning's thresholds come from all cases first.
    """
    from bench.plugins import plugin_module

    confident = plugin_module("methods", "confident")
    y = torch.from_numpy(np.asarray(given, dtype=np.int64))
    n = len(y)
    chunks = [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
    thresholds = None
    if "confident" in detectors:
        sums = torch.zeros(probs.shape[1], dtype=torch.float64)
        counts = torch.zeros(probs.shape[1], dtype=torch.float64)
        for c in chunks:
            s, k = confident.threshold_sums(probs[c], y[c], probs.shape[1])
            sums, counts = sums + s, counts + k
        thresholds = torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, math.inf))
    out = {name: np.zeros(n) for name in detectors}
    pred = probs.argmax(1).numpy().astype(np.uint8)
    if "dice" in detectors:
        per = dice_per_structure(pred, np.asarray(given), label_set)
        out["dice"] = 1.0 - np.mean([per[s] for s in label_set.averaged], axis=0)
    for c in chunks:
        p = probs[c]
        if "loss" in detectors:
            out["loss"][c] = per_sample_loss(p.clamp_min(1e-12).log(), y[c], dice_weight).double().numpy()
        if "confident" in detectors:
            out["confident"][c] = confident.pixel_issues(p, y[c], thresholds).flatten(1).double().mean(1).numpy()
        if "softmin" in detectors:
            self_conf = p.gather(1, y[c].unsqueeze(1))
            out["softmin"][c] = (1.0 - confident.softmin_quality(self_conf, SOFTMIN_TEMPERATURE)).numpy()
        if "entropy" in detectors:
            ent = -(p * p.clamp_min(1e-12).log()).sum(1) / math.log(p.shape[1])
            out["entropy"][c] = ent.flatten(1).double().mean(1).numpy()
    return out


def ensemble_score(scores: dict[str, np.ndarray]) -> np.ndarray:
    """The ensemble: the mean over detectors of each case's normalised rank (0 least, 1 most suspicious)."""
    return np.mean([normalised_ranks(v) for v in scores.values()], axis=0)


def audit_ranks(ensemble: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Rank of every case (1 = review first): by ensemble score, descending, ties by case id."""
    order = np.lexsort((np.asarray(ids, dtype=str), -np.asarray(ensemble)))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def injection_summary(scores: dict[str, np.ndarray], corrupted: np.ndarray, budget: int) -> dict[str, dict[str, Any]]:
    """Per detector and for the ensemble: precision and recall of its top `budget` cases, AUROC and AP, against the
    injected truth (`bench.detection_summary`; ties at the cut broken pessimistically)."""
    out = {}
    for name, values in scores.items():
        s = detection_summary(values, np.zeros(len(values), bool), corrupted, budget=budget)
        keep = ("n_corrupted", "budget", "precision_at_budget", "recall_at_budget", "auroc", "ap")
        out[name] = {k: s[k] for k in keep}
    return out


def given_labels(data: Data, settings: AuditSettings) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """The labels the audit judges: the dataset's, or with --inject a corrupted copy; with the truth (bool (N,)) and
    the NoiseResult (None without --inject)."""
    if settings.inject is None:
        return data.labels, None, None
    noisy = apply_noise(
        parse_noise(settings.inject), data.labels, data.spacing, data.ids, settings.seed, info=data.info, label_set=data.label_set
    )
    return noisy.labels, noisy.corrupted, noisy
