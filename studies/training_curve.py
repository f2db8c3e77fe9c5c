"""Study: the clean baseline's validation curve and cost under candidate protocol settings (issue 16, item 1).

Trains `baseline` on the clean labels of a protocol with settings overridden on the command
line, and prints after every epoch the mean training loss and the validation Dice per
structure (the protocol's validation patients, argmax of the model in eval mode), then the
test Dice and the CPU seconds of training and of the whole trial (process time, one thread:
robust to other processes on a shared machine, unlike wall time).

    python studies/training_curve.py phantom-quick image_size=80 decoder_channels=64,32,16,16,8 \\
        epochs=12 lr_schedule=poly augment=light channels_last=true --seed 0

CPU, one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any

import numpy as np
import torch

import bench
from bench.metrics import evaluate_segmentation
from bench.noise import apply_noise
from bench.training import fit
from bench.trial import initial_trial, protocol_data, seed_everything, to_tensor


def parse_override(text: str, protocol: bench.Protocol) -> tuple[str, Any]:
    """`key=value` -> (field, value typed like the protocol's field)."""
    key, _, value = text.partition("=")
    current = getattr(protocol, key)
    if isinstance(current, bool):
        return key, value.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return key, tuple(int(v) for v in value.split(","))
    if isinstance(current, dict):
        return key, {k: int(v) for k, v in (item.split(":") for item in value.split(",") if item)}
    return key, type(current)(value) if current is not None else int(value)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("overrides", nargs="*", help="field=value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = bench.protocols.get(args.protocol)
    protocol = dataclasses.replace(protocol, **dict(parse_override(o, protocol) for o in args.overrides))
    start_cpu = time.process_time()
    seed_everything(args.seed)
    parts = protocol_data(protocol)
    train, val, test = parts["train"], parts["val"], parts["test"]
    noisy = apply_noise("none", train.labels, train.spacing, train.ids, args.seed, info=train.info, label_set=train.label_set)
    recipe = bench.methods.get("baseline")
    trial = initial_trial(protocol, args.seed, train, noisy, recipe)
    val_images = to_tensor(val.images)
    names = [s.name for s in train.label_set.structures]

    def on_epoch(epoch: int, loss: float) -> None:
        pred = trial.predict(val_images).argmax(1).numpy()
        dice = []
        for k in range(1, len(names) + 1):
            inter = ((pred == k) & (val.labels == k)).sum()
            dice.append(2 * inter / max((pred == k).sum() + (val.labels == k).sum(), 1))
        shown = " / ".join(f"{d:.3f}" for d in dice)
        print(f"  epoch {epoch:3d}  loss {loss:.4f}  val Dice {shown}  mean {np.mean(dice):.3f}", flush=True)

    print(f"{protocol.name} with {' '.join(args.overrides) or 'no overrides'}, seed {args.seed}")
    t0 = time.process_time()
    result = fit(trial, recipe, on_epoch=on_epoch)
    train_cpu = time.process_time() - t0
    pred = trial.predict(to_tensor(test.images)).argmax(1).numpy().astype(np.uint8)
    seg = evaluate_segmentation(pred, test.labels, test.spacing, test.info, label_set=test.label_set)
    print(
        "  test Dice " + " / ".join(f"{seg['dice'][n]:.3f}" for n in names) + f"  mean {seg['dice']['mean']:.3f};"
        f" CPU s: training {train_cpu:.1f} (validation passes included), trial {time.process_time() - start_cpu:.1f};"
        f" wall training {result.train_s:.1f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
