"""Mean teacher: a student trained against an exponential moving average of itself, whose confident pixels overrule the label.

Tarvainen & Valpola, "Mean teachers are better role models: Weight-averaged consistency targets
improve semi-supervised deep learning results", NeurIPS 2017; reference code CuriousAI/mean-teacher
(`pytorch/main.py`, `pytorch/mean_teacher/ramps.py`, `losses.py`, `cli.py`). Its use on noisy
segmentation labels follows MTCL (Xu et al., MICCAI 2021; lemoshu/MTCL `code/train_MTCL_2D.py`).

Trainer "mean-teacher", per batch:
- the student (a U-Net of the protocol, Adam with the protocol's lr and weight decay, as the
  standard trainer) predicts the batch; the teacher (same architecture, no gradients, train mode
  as in both references) predicts the batch with Gaussian noise added to the images;
- supervised term: the protocol loss (`bench.per_sample_loss`) against the batch labels, except at
  pixels where the teacher's top probability is >= `confidence` and its class differs from the
  label: there the teacher's class is the target, for this step only (the trial's labels are not
  rewritten; only refurbishers can do that). The override starts once the consistency ramp-up is
  over (`override_from`, default the ramp-up length), when the teacher has become a target worth
  trusting: the ramp-up exists because the early teacher is not;
- consistency term: the mean over pixels and classes of (student softmax - teacher softmax)^2
  (the reference's `softmax_mse_loss`, which sums the squares over classes and divides by C),
  weighted by consistency x sigmoid_rampup(epoch, rampup_epochs);
- one Adam step on the sample-weighted mean of supervised + consistency (`bench.weighted_update`:
  a zero-weight sample contributes neither term; no step when every weight is 0), then the EMA:
  teacher = a x teacher + (1 - a) x student over the parameters, a = min(1 - 1/(t + 1), ema_decay)
  after the t-th step (the reference's `update_ema_variables`: the true average of the student's
  iterates until the exponential one takes over). Buffers (batch-norm statistics) are not averaged:
  the teacher's come from its own train-mode passes, as in the reference.
`Step.losses` is the protocol loss of the student's pass against the batch labels (not the
overridden targets), so the history's losses mean what they mean for every trainer.

Defaults and where they come from:
- ema_decay 0.99: MTCL's and the brief's (the reference's CLI default 0.999 comes with hundreds of
  epochs; its CIFAR-10 run uses 0.97). At these schedules (phantom-quick 180 steps, small 80, tiny
  4) 0.999's horizon of about 1,000 steps is longer than training, so with the bias-corrected ramp
  the teacher would be the plain average of every iterate since the untrained start; 0.99's
  horizon of about 100 steps is 7 epochs of phantom-quick.
- consistency 1.0 (not tuned): between the reference's 100 (CIFAR-10 with 4,000 of 50,000 labels,
  where consistency is the only signal on 92% of the data) and MTCL's 0.1 (which also scales its
  noisy-label term). Here every pixel is labelled and the consistency is a regulariser next to a
  full supervised loss: per pixel its gradient with respect to the student's probabilities is
  2 x consistency x (p_s - p_t) / C, small next to the cross-entropy's pull (p_s - y) on a wrong
  pixel wherever teacher and student roughly agree.
- sigmoid_rampup(e, T) = exp(-5 (1 - min(e, T) / T)^2) at the 0-based epoch e (the reference's,
  from Laine & Aila 2017, with the integer epoch as its `main.py` passes it); T = rampup_epochs,
  default max(1, round(epochs / 3)): the reference's CLI ramps over 30 of its default 90 epochs
  (`cli.py`). phantom-quick: 4 epochs, small 3, tiny 1.
- teacher input noise: clamp(0.1 x N(0, 1), -0.2, 0.2) added to the images ([0, 1]); MTCL's
  perturbation. The student sees the clean images, as there. The noise comes from a
  torch.Generator of the trainer's own seeded with trial seed + 1009, drawn on the CPU, so the
  trial's batch order and global RNG are untouched and every device draws the same noise.
- confidence 0.9: the gated refurbisher's gate (`methods/gated.py`), so the two "teacher overrules
  the label" rules agree on what confident means.
- evaluate "student": the model the trial evaluates is the student. The reference keeps the teacher
  (`main.py` picks its best checkpoint by the EMA model's accuracy), which pays after thousands of
  steps; in 80 to 180 steps the EMA still carries the early, untrained iterates (0.99^81 = 0.44 of
  its weight sits on the plain average of the first 100 steps at phantom-quick's end), and its
  batch-norm statistics come from noisy inputs. Measured once on small (8 epochs, systematic:0.5,
  seed 0; indicative only): mean test Dice student 0.471, teacher 0.365, baseline 0.440.
  evaluate="teacher" evaluates the teacher, for long schedules.

Deviations from the reference: the teacher starts as a copy of the student (the reference draws
it at random and its first EMA step, a = 0.5, mixes that in; a copy needs no random numbers and
keeps the trial's RNG stream that of the standard trainer); Adam at the protocol's constant rate
instead of SGD with a cosine schedule (the benchmark trains every method with the same
optimiser); no second classification head (`logit_distance_cost`); every sample is labelled.
"""

from __future__ import annotations

import copy
import math

import torch

from bench import Batch, Recipe, Step, Trainer, Trial, build_model, per_sample_loss, register_recipe, trainers, weighted_update

#: added to the trial seed for the teacher-noise generator (any fixed offset; documented so it is reproducible)
NOISE_SEED_OFFSET = 1009
EVALUATE = ("teacher", "student")


def sigmoid_rampup(epoch: float, length: float) -> float:
    """exp(-5 (1 - min(epoch, length) / length)^2): 0.0067 at epoch 0, 1 from `length` on; 1 when length is 0."""
    if length == 0:
        return 1.0
    phase = 1.0 - min(max(epoch, 0.0), length) / length
    return math.exp(-5.0 * phase * phase)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float, step: int) -> float:
    """In place: teacher = a x teacher + (1 - a) x student over the parameters, a = min(1 - 1/(step + 1), decay); returns a."""
    a = min(1.0 - 1.0 / (step + 1), decay)
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(a).add_(s.detach(), alpha=1.0 - a)
    return a


def override_targets(labels: torch.Tensor, teacher_probs: torch.Tensor, confidence: float) -> torch.Tensor:
    """Targets (B, H, W): the teacher's class where its top probability is >= confidence and differs from `labels`."""
    top, best = teacher_probs.max(1)
    return torch.where(top >= confidence, best, labels)


def consistency_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Per sample (B,): the mean over classes and pixels of (student softmax - teacher softmax)^2 (the reference's MSE / C)."""
    return (torch.softmax(student_logits, 1) - teacher_probs).square().flatten(1).mean(1)


@trainers.register("mean-teacher")
class MeanTeacherTrainer(Trainer):
    """A student U-Net trained on the protocol loss plus consistency with its EMA teacher; the teacher overrules confident pixels."""

    def __init__(
        self,
        ema_decay: float = 0.99,
        consistency: float = 1.0,
        rampup_epochs: int | None = None,
        noise_sigma: float = 0.1,
        noise_clip: float = 0.2,
        confidence: float = 0.9,
        override: bool = True,
        override_from: int | None = None,
        evaluate: str = "student",
    ) -> None:
        super().__init__(
            ema_decay=ema_decay,
            consistency=consistency,
            rampup_epochs=rampup_epochs,
            noise_sigma=noise_sigma,
            noise_clip=noise_clip,
            confidence=confidence,
            override=override,
            override_from=override_from,
            evaluate=evaluate,
        )
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")
        if consistency < 0 or noise_sigma < 0 or noise_clip < 0:
            raise ValueError("consistency, noise_sigma and noise_clip must be >= 0")
        if (rampup_epochs is not None and rampup_epochs < 0) or (override_from is not None and override_from < 0):
            raise ValueError("rampup_epochs and override_from must be >= 0")
        if not 0.5 <= confidence <= 1.0:
            raise ValueError("confidence must be in [0.5, 1]: above 0.5 only one class can reach it")
        if evaluate not in EVALUATE:
            raise ValueError(f"evaluate must be one of {EVALUATE}")
        self.ema_decay, self.consistency, self.rampup_epochs = ema_decay, consistency, rampup_epochs
        self.noise_sigma, self.noise_clip = noise_sigma, noise_clip
        self.confidence, self.override, self.override_from, self.evaluate = confidence, override, override_from, evaluate

    def rampup(self, epochs: int) -> int:
        """Ramp-up length in epochs for a protocol of `epochs` (default max(1, round(epochs / 3)))."""
        return max(1, round(epochs / 3)) if self.rampup_epochs is None else self.rampup_epochs

    def consistency_weight(self, epoch: int, epochs: int) -> float:
        """consistency x sigmoid_rampup(epoch, ramp-up) at 0-based `epoch`."""
        return self.consistency * sigmoid_rampup(epoch, self.rampup(epochs))

    def overrides_at(self, epoch: int, epochs: int) -> bool:
        """Whether the teacher overrules confident pixels at 0-based `epoch` (from `override_from`, default the ramp-up's end)."""
        start = self.rampup(epochs) if self.override_from is None else self.override_from
        return self.override and epoch >= start

    def setup(self, trial: Trial) -> torch.nn.Module:
        p = trial.protocol
        self.student = build_model(p, trial.device, trial.inputs.num_classes)
        self.teacher = copy.deepcopy(self.student)
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        self.noise = torch.Generator().manual_seed(trial.seed + NOISE_SEED_OFFSET)
        self.steps = 0
        return self.teacher if self.evaluate == "teacher" else self.student

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """The images plus clamp(sigma x N(0, 1), -clip, clip), drawn on the CPU from the trainer's own generator."""
        eps = torch.randn(x.shape, generator=self.noise) * self.noise_sigma
        return x + eps.clamp(-self.noise_clip, self.noise_clip).to(x.device)

    def step(self, trial: Trial, batch: Batch) -> Step:
        epochs = trial.protocol.epochs
        self.student.train()
        self.teacher.train()
        with torch.no_grad():
            teacher_probs = torch.softmax(self.teacher(self.perturb(batch.x)), 1)
        logits = self.student(batch.x)
        losses = per_sample_loss(logits, batch.y, trial.protocol.dice_weight)
        supervised = losses
        if self.overrides_at(trial.epoch, epochs):
            supervised = per_sample_loss(logits, override_targets(batch.y, teacher_probs, self.confidence), trial.protocol.dice_weight)
        objective = supervised + self.consistency_weight(trial.epoch, epochs) * consistency_loss(logits, teacher_probs)
        if batch.w.sum() > 0:
            weighted_update(self.optimizer, objective, batch.w)
            self.steps += 1
            ema_update(self.teacher, self.student, self.ema_decay, self.steps)
        return Step(losses.detach(), logits.detach())


register_recipe(
    Recipe(
        name="mean-teacher",
        description="Mean teacher: a U-Net student trained on the protocol loss plus a softmax-MSE consistency with its EMA "
        "teacher (decay 0.99, teacher input noise 0.1 clipped at 0.2, weight 1.0 ramped up sigmoidally over the first third "
        "of training); after the ramp-up, pixels where the teacher is >= 0.9 sure of another class train on its class. "
        "The student is evaluated. No detection, no refurbishment.",
        trainer="mean-teacher",
        detect_at=1.0,
        trainer_params={"ema_decay": 0.99, "consistency": 1.0, "evaluate": "student"},
    )
)
