"""bench.work: MACs counted against hand-computed layers, backward passes by which gradients they compute, nothing a model
computes changed, and a trial's count against the per-image work of its U-Net times the images it trained on."""

import copy

import pytest
import torch

from bench import protocols
from bench.model import build_model
from bench.trial import run_trial
from bench.work import count_work


@pytest.mark.parametrize(
    ("layer", "shape", "macs"),
    [
        (torch.nn.Conv2d(3, 8, 3, padding=1), (2, 3, 10, 12), 2 * 8 * 10 * 12 * (3 * 3 * 3)),  # output elements x (C_in x 3 x 3)
        (torch.nn.Conv2d(8, 8, 3, groups=8), (1, 8, 6, 6), 8 * 4 * 4 * 9),  # depthwise: one input channel per output
        (torch.nn.Conv2d(4, 6, 2, stride=2), (1, 4, 8, 8), 6 * 4 * 4 * (4 * 2 * 2)),
        (torch.nn.ConvTranspose2d(4, 6, 2, stride=2), (1, 4, 5, 5), 4 * 5 * 5 * (6 * 2 * 2)),  # each input to 6 x 2 x 2 outputs
        (torch.nn.Linear(10, 7), (3, 10), 3 * 7 * 10),
        (torch.nn.BatchNorm2d(3), (2, 3, 4, 4), 0),  # element-wise: not counted
    ],
)
def test_forward_macs_are_the_hand_computed_products(layer, shape, macs):
    with count_work() as work, torch.no_grad():
        layer(torch.rand(shape))
    assert (work.forward_macs, work.backward_macs) == (macs, 0)


def test_a_layer_called_with_its_input_by_keyword_is_counted():
    with count_work() as work, torch.no_grad():
        torch.nn.Linear(10, 7)(input=torch.rand(3, 10))
    assert work.forward_macs == 3 * 7 * 10


def test_a_backward_pass_counts_one_forward_per_gradient_it_computes():
    conv, x = torch.nn.Conv2d(2, 4, 3), torch.rand(1, 2, 7, 7)
    macs = 4 * 5 * 5 * 2 * 9
    for input_grad, weight_grad, expected in ((False, True, macs), (True, True, 2 * macs), (True, False, macs)):
        conv.requires_grad_(weight_grad)
        with count_work() as work:
            conv(x.clone().requires_grad_(input_grad)).sum().backward()
        assert (work.forward_macs, work.backward_macs) == (macs, expected)
    with count_work() as work:  # a forward whose output is never back-propagated: no backward work
        conv(x.requires_grad_(True)).sum()
    assert work.backward_macs == 0


def test_blocks_nest_and_nothing_is_counted_outside_them():
    conv, x = torch.nn.Conv2d(1, 2, 1), torch.rand(1, 1, 3, 3)
    with count_work() as outer:
        conv(x)
        with count_work() as inner:
            conv(x)
    conv(x)
    with count_work() as later:
        pass
    assert (outer.forward_macs, inner.forward_macs, later.forward_macs) == (36, 18, 0)
    assert not torch.nn.modules.module._global_forward_hooks  # the hook is gone with the last block


def test_counting_changes_no_output_and_no_gradient_of_a_unet():
    torch.manual_seed(0)
    counted = build_model(protocols.get("phantom-quick@v4"))
    plain = copy.deepcopy(counted)
    x, y = torch.rand(2, 1, 80, 96), torch.randint(0, 4, (2, 80, 96))
    with count_work() as work:
        out = counted(x)
        torch.nn.functional.cross_entropy(out, y).backward()
    reference = plain(x)
    torch.nn.functional.cross_entropy(reference, y).backward()
    assert work.forward_macs > 0 and work.backward_macs > work.forward_macs
    assert torch.equal(out, reference)
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(counted.parameters(), plain.parameters(), strict=True))


def test_a_baseline_trial_counts_one_training_pass_per_image_and_epoch():
    """Standard training forwards and back-propagates each training image once per epoch and nothing else: its record's
    MACs are epochs x images x one image's training step, measured on a fresh U-Net of the protocol."""
    proto = protocols.get("tiny")
    record = run_trial("tiny", "baseline", "none", 0)
    model, size = build_model(proto), proto.image_size
    with count_work() as one:
        torch.nn.functional.cross_entropy(model(torch.rand(1, 1, size, size)), torch.zeros(1, size, size, dtype=torch.long)).backward()
    images = proto.epochs * record.dataset["n_train"]
    assert record.cost["forward_macs"] == images * one.forward_macs
    assert record.cost["backward_macs"] == images * one.backward_macs
