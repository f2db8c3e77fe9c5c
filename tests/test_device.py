"""Where a trial computes (`bench.device`): the CPU, or the GPU Ray assigned it."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

import bench
from bench import BenchError
from bench.device import cpu_kind, device_description, trial_device
from bench.record import Record
from bench.trial import reproduce_command

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
without_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")


def test_cpu_is_the_default_and_unknown_devices_are_refused():
    assert trial_device("cpu") == torch.device("cpu")
    with pytest.raises(BenchError, match="unknown device 'tpu'; use one of: cpu, cuda"):
        trial_device("tpu")
    described = device_description()
    assert described["kind"] == "cpu" and described["torch_threads"] == torch.get_num_threads() and "gpu" not in described


def test_the_cpu_kind_is_vendor_family_and_model_of_the_first_processor():
    # two processors as /proc/cpuinfo lists them; "model name" must not be taken for "model"
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
        "model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\nflags\t\t: fpu avx2\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\n"
    )
    assert cpu_kind(text) == ("GenuineIntel-6-85", "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz")
    assert cpu_kind("processor\t: 0\nvendor_id\t: ARM\n") == ("unknown", "")  # no family and model: no kind
    assert device_description()["cpu"] == cpu_kind()[0]  # every record says which kind made it


@without_gpu
def test_asking_for_a_gpu_without_one_is_one_clear_error_before_any_work(monkeypatch):
    called = []
    monkeypatch.setattr(bench.trial, "protocol_data", lambda *a, **k: called.append(1))
    with pytest.raises(BenchError) as error:
        bench.run_trial("tiny", "baseline", "none", 0, device="cuda")
    message = str(error.value)
    assert "\n" not in message and "asks for a GPU" in message and "--gpus-per-trial 0" in message
    assert not called  # refused before data or training


def test_a_gpu_record_reproduces_with_a_gpu():
    tiny = bench.protocols.get("tiny")
    assert reproduce_command(tiny, "baseline", "none", 0) == "bench run --protocol tiny --method baseline --noise none --seed 0"
    assert reproduce_command(tiny, "baseline", "none", 0, "cuda").endswith("--seed 0 --gpus-per-trial 1")


def _digest(record: Record) -> str:
    return hashlib.sha256(json.dumps([record.metrics, record.per_sample], sort_keys=True).encode()).hexdigest()


@needs_gpu
@pytest.mark.parametrize("method", ["baseline", "vog-refurb", "coteaching", "adele", "confident-refurb"])
def test_every_kind_of_method_trains_on_the_gpu_deterministically(method):
    first = bench.run_trial("tiny", method, "systematic:0.5", 0, device="cuda")
    again = bench.run_trial("tiny", method, "systematic:0.5", 0, device="cuda")
    assert Record.problems(first.to_dict()) == []
    assert first.provenance["device"]["kind"] == "cuda" and first.provenance["device"]["gpu"]
    assert first.provenance["command"].endswith("--gpus-per-trial 1")
    assert _digest(first) == _digest(again)
