"""The standard update rule: one U-Net, Adam, the protocol's per-sample loss weighted by the sample weights."""

from __future__ import annotations

import torch

from bench import Batch, Step, Trainer, Trial, build_model, per_sample_loss, trainers, weighted_update


@trainers.register("standard")
class StandardTrainer(Trainer):
    """One U-Net of the protocol, Adam (protocol lr and weight decay), per-sample CE + soft Dice weighted by the sample weights."""

    def setup(self, trial: Trial) -> torch.nn.Module:
        p = trial.protocol
        self.model = build_model(p, trial.device, trial.inputs.num_classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        return self.model

    def step(self, trial: Trial, batch: Batch) -> Step:
        self.model.train()
        logits = self.model(batch.x)
        losses = per_sample_loss(logits, batch.y, trial.protocol.dice_weight)
        weighted_update(self.optimizer, losses, batch.w)
        return Step(losses.detach(), logits.detach())
