"""Where a trial computes: the CPU, or the GPU that Ray gave it (`--gpus-per-trial`).

State tensors (images, labels, weights) stay on the CPU; the training loop moves
each batch to the trial's device and brings per-sample results back, so methods
never see where the model runs.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError

DEVICES = ("cpu", "cuda")


def trial_device(name: str) -> torch.device:
    """The torch device for `name` ('cpu' or 'cuda'), set up for deterministic kernels; BenchError if unusable."""
    if name not in DEVICES:
        raise BenchError(f"unknown device '{name}'; use one of: {', '.join(DEVICES)}")
    if name == "cpu":
        return torch.device("cpu")
    # cuBLAS is only deterministic with a fixed workspace; it must be set before the first CUDA call
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BenchError(
            f"this trial asks for a GPU, but torch {torch.__version__} ({build}, CUDA_VISIBLE_DEVICES={visible}) sees none; "
            "run with --gpus-per-trial 0, or install a CUDA build of torch on every node"
        )
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.device("cuda", torch.cuda.current_device())


def cpu_kind(cpuinfo: str | None = None) -> tuple[str, str]:
    """The CPU kind as /proc/cpuinfo names it: ("vendor-family-model", model name), e.g. ("AuthenticAMD-23-1", "AMD EPYC").

    CPU results are bit-identical within one kind, not across kinds, even with the SIMD paths capped
    (tests/golden_values.py), so records and the golden values say which kind made them. ("unknown", "")
    where /proc/cpuinfo is missing or lacks those fields. `cpuinfo`: its text, read from /proc when None."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        except OSError:
            return "unknown", ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    parts = [fields.get(k, "") for k in ("vendor_id", "cpu family", "model")]
    kind = "-".join(p.replace(" ", "_") for p in parts) if all(parts) else "unknown"
    return kind, fields.get("model name", "")


def device_description(device: torch.device | None = None) -> dict[str, Any]:
    """What a trial ran on, for its record: device kind, processor and CPU kind (`cpu_kind`), torch threads (and the GPU's name)."""
    device = device or torch.device("cpu")
    cpu, cpu_name = cpu_kind()
    out: dict[str, Any] = {
        "kind": device.type,
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu,
        "cpu_name": cpu_name,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    return out
