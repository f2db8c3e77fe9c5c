"""Golden values: what the harness produces today, computed in a process with pinned CPU kernels.

Run by `tests/test_golden.py` (and by hand: `python tests/golden_values.py` prints them as
JSON; `--write` stores them in `tests/golden_values.json`, which only a deliberate change
that moves numbers, with a new protocol or generator version, should ever do; `--write --cpu`
in this CPU kind's own file, see below).

What is pinned:
- `noise/<spec>`: sha256 of every noise generator's noisy labels, corrupted mask, changed
  pixels and per-sample label Dice on the training labels of the `tiny` protocol, seed 0;
- `phantom/<generator>`: sha256 of the echo phantom's images, labels and spacing per
  generator version (64 px, 10 patients, generated into an empty cache);
- `trial/<recipe>/<noise>/...`: every number of the record's `metrics` and `per_sample`
  sections of trials on `tiny`, seed 0, one torch thread;
- `trial2/<recipe>/<noise>/...`: the same for every recipe of the v2 boards on `tiny` trained as
  they are (`tiny_v2()`: recipe generation 2, poly learning rate, light augmentation, channels-last).

Kernels: numpy, torch, oneDNN and MKL pick SIMD code paths by CPU (AVX-512 and AVX2 give
other last bits through transcendental functions and convolution blocking), so this script
is meant to run with the environment of `PINNED_ENV`, which caps all four at AVX2. That
made the values hold on the Intel machines that pinned and checked them, not on every
x86-64 CPU: on an AMD EPYC of family 23 model 1 (Zen, AVX2 only) the generator-3 phantom's
pixels and the last bits of every trial come out otherwise under the same cap. Not isolated;
ruled out for the phantom there: numpy's SIMD level (its pixels stay the same with
NPY_DISABLE_CPU_FEATURES also naming X86_V3) and OpenBLAS's kernel (OPENBLAS_CORETYPE
Prescott, Sandybridge, Haswell or Zen: the same pixels). Left: scipy.fft, libm, and for the
trials the convolutions' cache-sized blocking in oneDNN.
An AMD EPYC of family 25 model 1 (Zen 3) gives family 23's values bit for bit: all 3,593 of them,
pinned for it from an unchanged checkout on 2026-12-07, and six phantom-quick v4 records of family 23 rerun
there (`studies/rerun_records.py`, six recipes: every value identical). So the split is not by Zen generation.
So a CPU whose values differ gets its own file, `golden_values.<cpu_signature()>.json`,
written from an unchanged checkout (`--write --cpu`); the test reads that file where it
exists and `golden_values.json` elsewhere. On a CPU kind nobody pinned yet (no file of its
own and not `STORE_VENDOR`'s), the test checks strictly only the values that every pinned
file agrees on (`cpu_dependent` names the others) and skips the rest, saying so. The same
holds for board records: they are reproducible bit for bit on one CPU kind, and differ in
the last digits across kinds.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: caps every library's SIMD dispatch at AVX2 (set before numpy and torch are imported)
PINNED_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_CBWR": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OMP_NUM_THREADS": "1",
}
STORE = Path(__file__).with_name("golden_values.json")


def cpu_signature() -> str:
    """This CPU's kind, "vendor-family-model" (`bench.device.cpu_kind`), which names its own golden file."""
    from bench.device import cpu_kind

    return cpu_kind()[0]


def own_store() -> Path:
    """Where this CPU kind's own golden values live (`cpu_signature`), pinned or not."""
    return STORE.with_name(f"golden_values.{cpu_signature()}.json")


def store() -> Path:
    """This CPU kind's golden values where they were pinned for it (`own_store`), else `STORE`."""
    own = own_store()
    return own if own.exists() else STORE


#: the CPU vendor whose kinds pinned and checked `STORE` (the Intel machines of the first sessions all agreed on it)
STORE_VENDOR = "GenuineIntel"


def pinned_files() -> list[Path]:
    """Every golden file: `STORE` and each CPU kind's own."""
    return [STORE, *sorted(STORE.parent.glob("golden_values.*.json"))]


def cpu_dependent(files: list[Path]) -> set[str]:
    """The paths whose value is not the same in every one of `files` (missing from one counts): the values known to
    differ between CPU kinds, where the others are known to be the same on every kind pinned so far."""
    stores = [json.loads(f.read_text()) for f in files]
    keys = set().union(*stores)
    return {k for k in keys if any(k not in s or s[k] != stores[0].get(k) for s in stores)}


def kind_is_pinned() -> bool:
    """Whether this CPU kind's golden values are known: it has its own file, or its vendor's kinds pinned `STORE`."""
    return own_store().exists() or cpu_signature().startswith(STORE_VENDOR + "-")


NOISE_SPECS = (
    "random:1",
    "random:1,mode=markov",
    "random:0.5",
    "systematic:1",
    "systematic:1,direction=erode",
    "systematic:1,structure=myo,direction=erode",
    "systematic:1,structure=la",
    "systematic:0.5",
    "omission:1",
    "omission:1,structure=la",
    "shift:1",
    "coarse:1",
    "temporal:1",
)
#: (recipe, noise spec) trials on `tiny`, seed 0: every registered recipe at systematic:0.5,
#: and the two detect-then-act families at the other error types
TRIALS = (
    *((m, "systematic:0.5") for m in (
        "baseline", "loss-refurb", "loss-discard", "vog-refurb", "vog-discard", "forgetting-refurb",
        "confident-refurb", "coteaching", "adele", "oracle-refurb", "oracle-discard",
    )),
    ("loss-refurb", "omission:0.5"),
    ("loss-refurb", "random:0.5"),
    ("oracle-refurb", "omission:0.5"),
    ("confident-refurb", "omission:0.5"),
)  # fmt: skip
#: recipes pinned at systematic:0.5 on `tiny_v2()`: every recipe the phantom-quick v2 board runs (those that need trusted
#: samples run on phantom-quick-trusted6 and are checked by tests/test_recipes_contract.py)
TRIALS_V2 = (
    "baseline", "loss-refurb", "loss-discard", "vog-refurb", "vog-discard", "forgetting-refurb", "confident-refurb",
    "confident-cv-refurb", "entropy-refurb", "coteaching", "adele", "gce", "sce", "bootstrap-soft", "bootstrap-hard",
    "nr-dice", "t-loss", "selfie", "mean-teacher", "trinet", "oracle-refurb", "oracle-discard", "oracle-restore",
)  # fmt: skip


def tiny_v2() -> Any:
    """`tiny` with the training of the v2 boards (`bench.protocols.V2_TRAINING`), its seed kept."""
    import dataclasses

    import bench
    from bench.protocols import V2_TRAINING

    return dataclasses.replace(bench.protocols.get("tiny"), **{k: v for k, v in V2_TRAINING.items() if k != "seeds"})


def digest(*arrays: Any) -> str:
    """sha256 (16 hex digits) over arrays' dtype, shape and bytes."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """{'a/b/0': leaf} for nested dicts and lists of JSON values."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}/{i}"))
        return out
    return {prefix: value}


def compute() -> dict[str, Any]:
    """Every golden value of the current code, as {path: value}."""
    import torch

    torch.set_num_threads(1)
    import bench
    from bench.noise import apply_noise
    from bench.trial import protocol_data

    out: dict[str, Any] = {}
    train = protocol_data(bench.protocols.get("tiny"))["train"]
    for spec in NOISE_SPECS:
        r = apply_noise(spec, train.labels, train.spacing, train.ids, 0, info=train.info)
        out[f"noise/{spec}"] = digest(r.labels, r.corrupted, r.changed, r.label_dice)
    with tempfile.TemporaryDirectory() as empty:
        for generator in (2, 3):
            data = bench.load_dataset("echo-phantom", size=64, patients=10, generator=generator, cache_dir=Path(empty))
            out[f"phantom/{generator}/images"] = digest(data.images)
            out[f"phantom/{generator}/labels"] = digest(data.labels, data.spacing)
    for method, noise in TRIALS:
        record = bench.run_trial("tiny", method, noise, seed=0)
        out.update(flatten(record.metrics, f"trial/{method}/{noise}/metrics"))
        out.update(flatten(record.per_sample, f"trial/{method}/{noise}/per_sample"))
    for method in TRIALS_V2:
        record = bench.run_trial(tiny_v2(), method, "systematic:0.5", seed=0)
        out.update(flatten(record.metrics, f"trial2/{method}/systematic:0.5/metrics"))
        out.update(flatten(record.per_sample, f"trial2/{method}/systematic:0.5/per_sample"))
    return out


if __name__ == "__main__":
    # the checkout this file is in, not the `bench` an (editable) install elsewhere provides: run as a
    # script, sys.path[0] is tests/, so a worktree would otherwise pin and check another tree's code
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    values = compute()
    text = json.dumps(values, indent=1, sort_keys=True) + "\n"
    if "--write" in sys.argv[1:]:  # with --cpu: this CPU kind's own file (pin it from an unchanged checkout)
        (own_store() if "--cpu" in sys.argv[1:] else STORE).write_text(text)
    else:
        sys.stdout.write(text)
