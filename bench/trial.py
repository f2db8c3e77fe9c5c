"""One trial: a pure function of (protocol, method, noise spec, seed) -> record.

protocol -> data -> noise -> training with hooks -> evaluation on the clean test
labels -> record. Run twice on the same CPU with the same thread count, it gives
the same noisy labels bit for bit and the same metrics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import bench
from bench.data import Data, fingerprint, load_dataset
from bench.device import device_description, trial_device
from bench.errors import BenchError
from bench.method import Recipe, Trial, TrialInputs, check_trusted, read_only, recipe_for
from bench.metrics import detection_summary, evaluate_segmentation, pixel_localisation, refurbishment_summary
from bench.noise import NoiseResult, apply_noise, parse_noise
from bench.protocols import Protocol, protocols
from bench.record import Record, method_section, noise_section, protocol_section, provenance_section
from bench.training import TrainResult, fit
from bench.work import count_work

if TYPE_CHECKING:
    import pandas as pd


def protocol_data(protocol: Protocol, data_root: str | Path | None = None) -> dict[str, Data]:
    """The protocol's train / val / test subsets (the first k patients of each split, in id order)."""
    data = load_dataset(protocol.dataset, size=protocol.image_size, root=data_root, **protocol.dataset_options)
    limits = {"train": protocol.train_patients, "val": protocol.val_patients, "test": protocol.test_patients}
    out = {}
    for split, limit in limits.items():
        part = data.split(split)
        if limit is not None:
            keep = sorted(part.info["patient"].unique())[:limit]
            part = part.select(part.info["patient"].isin(keep).to_numpy())
        out[split] = part
    return out


def trusted_mask(info: pd.DataFrame | None, n_patients: int, seed: int) -> np.ndarray:
    """bool (N,): every image of the `n_patients` training patients that are verified clean (`Protocol.trusted_patients`).

    Which patients: those ranked first by sha256 of (seed, "trusted:" + patient id), the way the noise ranks samples
    (`bench.noise.select_corrupted`, with another key, so the two choices are independent). Per seed rather than by id
    order, so that a board's seeds also average over which patients happen to be trusted; nested (the first k of a
    larger count are the k of the smaller), independent of the order of the rows, and always whole patients (all their
    views and phases), as an annotation project verifies cases, not single frames.
    """
    n = 0 if info is None else len(info)
    if n_patients == 0:
        return np.zeros(n, dtype=bool)
    if info is None or "patient" not in info.columns:
        raise BenchError("trusted_patients needs a dataset whose metadata names each image's patient (a 'patient' column)")
    patients = sorted(info["patient"].unique())
    if not 0 <= n_patients < len(patients):
        raise BenchError(
            f"trusted_patients = {n_patients}, but the protocol has {len(patients)} training patients: "
            f"give 0 to {len(patients) - 1}, so that some labels are left to clean"
        )
    rank = sorted(patients, key=lambda p: hashlib.sha256(f"{seed}:trusted:{p}".encode()).digest())
    return info["patient"].isin(rank[:n_patients]).to_numpy()


def with_trusted(noisy: NoiseResult, clean: np.ndarray, trusted: np.ndarray) -> NoiseResult:
    """The noise as applied, then the trusted samples' clean labels put back and their truth marked clean.

    The noise is drawn exactly as without a trusted subset (same corrupted set among the untrusted samples, same
    pixels), so a trusted protocol's untrusted labels are a plain run's. `n_corrupted` then counts only untrusted
    samples: the generators pick round(level x N) of all N samples, the trusted ones among them are undone, so
    round(level x N) - N_trusted <= n_corrupted <= round(level x N), about level x (N - N_trusted) on average.
    """
    if not trusted.any():
        return noisy
    labels = noisy.labels.copy()
    labels[trusted] = clean[trusted]
    changed = noisy.changed.copy()
    changed[trusted] = False
    dice = noisy.label_dice.copy()
    dice[trusted] = 1.0
    return dataclasses.replace(noisy, labels=labels, corrupted=noisy.corrupted & ~trusted, changed=changed, label_dice=dice)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


def reproduce_command(protocol: Protocol, method: str, noise: str, seed: int, device: str = "cpu") -> str:
    """The `bench run` command line that reruns exactly this trial (on the same kind of device)."""
    gpu = ["--gpus-per-trial", "1"] if device == "cuda" else []
    return shlex.join(["bench", "run", "--protocol", protocol.name, "--method", method, "--noise", noise, "--seed", str(seed), *gpu])


def initial_trial(
    protocol: Protocol,
    seed: int,
    train: Data,
    noisy: NoiseResult,
    recipe: Recipe,
    device: torch.device | None = None,
    trusted: np.ndarray | None = None,
) -> Trial:
    """The trial a recipe starts training from: the training images, their noisy labels, unit weights.

    The noise truth goes in only when the recipe is a reference (the oracle's detector, the restoring refurbisher);
    which samples are trusted (bool (N,), default none) goes to every method.
    """
    reference = recipe.reference
    inputs = TrialInputs(
        protocol=protocol,
        seed=seed,
        images=to_tensor(train.images),
        given=read_only(noisy.labels),
        ids=tuple(train.ids),
        info=train.info,
        label_set=train.label_set,
        device=device or torch.device("cpu"),
        spacing=read_only(np.asarray(train.spacing, dtype=np.float64)),
        truth_corrupted=read_only(noisy.corrupted) if reference else None,
        truth_labels=read_only(train.labels) if reference else None,
        trusted=read_only(np.zeros(len(train), dtype=bool) if trusted is None else np.asarray(trusted, dtype=bool)),
    )
    labels = torch.from_numpy(noisy.labels.astype(np.int64))
    return Trial(inputs, labels, torch.ones(len(train)), torch.Generator().manual_seed(seed))


def per_sample_section(result: TrainResult, corrupted: np.ndarray, trusted: np.ndarray | None = None) -> dict[str, Any] | None:
    """Per training sample, in training-id order: the detector's score and flag, the truth, and what was refurbished;
    with trusted samples also which they are (`trusted`, left out without any, so earlier records keep their shape).

    Kept in the record so detection can be re-analysed (other budgets, curves) without rerunning.
    """
    if result.scores is None or result.flags is None:
        return None
    n = result.trial.n
    refurbished = result.refurbished if result.refurbished is not None else np.zeros(n, dtype=bool)
    out = {
        "ids_fingerprint": fingerprint(*result.trial.ids),
        "scores": [float(f"{v:.6g}") for v in result.scores.values],
        "flags": result.flags.astype(int).tolist(),
        "corrupted": corrupted.astype(int).tolist(),
        "refurbished": refurbished.astype(int).tolist(),
    }
    if trusted is not None and trusted.any():
        out["trusted"] = trusted.astype(int).tolist()
    return out


def run_trial(
    protocol: str | Protocol,
    method: str,
    noise: str,
    seed: int,
    on_epoch: Callable[[int, float], None] | None = None,
    data_root: str | Path | None = None,
    device: str = "cpu",
    noise_seed: int | None = None,
) -> Record:
    """Run one trial and return its record (status 'ok'); bad names or specs raise BenchError.

    `data_root` is where a dataset that reads files (CAMUS) finds them; it is not part of the
    trial's identity: the dataset fingerprint in the record is. `device` is 'cpu' or 'cuda'
    (the GPU Ray assigned); metrics are reproducible per device kind and thread count.
    `noise_seed` draws the noisy labels (and trusted patients) with another seed than the
    training's (initial weights, data order, augmentation), for a study that separates the two
    sources of a seed's variance; the record then says so in `noise.seed`. `bench run` and
    every board use one seed for both.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    where = trial_device(device)
    proto = protocols.get(protocol) if isinstance(protocol, str) else protocol
    recipe: Recipe = recipe_for(method, proto)
    check_trusted(recipe, proto)
    spec = parse_noise(noise)
    seed_everything(seed)
    parts = protocol_data(proto, data_root)
    train, test = parts["train"], parts["test"]
    drawn = seed if noise_seed is None else noise_seed
    noisy = apply_noise(spec, train.labels, train.spacing, train.ids, drawn, info=train.info, label_set=train.label_set)
    trusted = trusted_mask(train.info, proto.trusted_patients, drawn)
    noisy = with_trusted(noisy, train.labels, trusted)

    with count_work() as work:  # the method's work: training, detection, refurbishment; not the evaluation all share
        trial = initial_trial(proto, seed, train, noisy, recipe, where, trusted)
        result = fit(trial, recipe, on_epoch=on_epoch)

    t_eval = time.perf_counter()
    pred = trial.predict(to_tensor(test.images)).argmax(1).numpy().astype(np.uint8)
    seg = evaluate_segmentation(pred, test.labels, test.spacing, test.info, label_set=test.label_set)
    eval_s = time.perf_counter() - t_eval

    detection = None
    if result.scores is not None and result.flags is not None:
        # detection is judged on the samples whose status a method does not know: trusted ones are known clean
        rest = ~trusted
        detection = detection_summary(result.scores.values[rest], result.flags[rest], noisy.corrupted[rest])
        pixel_flags = result.scores.pixel_flags  # a detector that localises errors gives bool (N, H, W) maps
        detection["pixel"] = pixel_localisation(pixel_flags[rest], noisy.changed[rest]) if pixel_flags is not None else None

    return Record(
        status="ok",
        protocol=protocol_section(proto),
        dataset={
            "name": train.name,
            "fingerprint": train.fingerprint,
            "n_train": len(train),
            "n_test": len(test),
            **({"n_trusted": int(trusted.sum())} if trusted.any() else {}),
        },
        method=method_section(recipe),
        noise=noise_section(spec, int(noisy.corrupted.sum()), noisy.mean_label_dice) | ({} if drawn == seed else {"seed": drawn}),
        seed=seed,
        metrics={
            "dice": seg["dice"],
            "hd95": seg["hd95"],
            "hd": seg["hd"],
            "msd": seg["msd"],
            "missed": seg["missed"],
            **{name: seg[name] for name, _ in test.label_set.derived},
            "clinical": seg["clinical"],
            "detection": detection,
            "refurbishment": refurbishment_summary(
                result.refurbished, noisy.corrupted, train.labels, noisy.labels, trial.labels.astype(np.uint8), train.label_set
            ),
            "final_train_loss": float(trial.history.losses[-1].mean()),
        },
        per_sample=per_sample_section(result, noisy.corrupted, trusted),
        cost={
            "wall_s": time.perf_counter() - started,
            # CPU seconds of the trial's process (all its threads): what a CPU trial cost, whatever else shared the machine
            "cpu_s": time.process_time() - started_cpu,
            "train_s": result.train_s,
            "detect_s": result.detect_s,
            "eval_s": eval_s,
            "epochs": proto.epochs,
            "train_images_per_s": proto.epochs * len(train) / max(result.train_s - result.detect_s, 1e-9),
            # multiply-accumulates of the method's convolutions and linear layers (`bench.work`): the same on every machine
            "forward_macs": work.forward_macs,
            "backward_macs": work.backward_macs,
        },
        provenance=provenance_section(
            device_description(where), reproduce_command(proto, recipe.name, spec.text, seed, device), bench.__version__
        ),
    )
