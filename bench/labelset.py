"""What the values of a dataset's label maps mean: its structures, derived regions, the mean and the clinical roles.

A dataset declares its `LabelSet`; metrics, the model's class count, plots and
boards read names and values from it instead of assuming CAMUS's. The values of
the structures are 1, 2, ..., K (0 is background), so a label map has K + 1 classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Structure:
    """One labelled structure: its value in the label maps, the short name records use, and a name for people."""

    value: int
    name: str
    title: str


@dataclass(frozen=True)
class LabelSet:
    """A dataset's label values and what is computed from them.

    structures: values 1..K in order; derived: extra evaluated regions as (name,
    values), e.g. the epicardium = cavity + wall; mean_over: the structures
    averaged into `mean` (empty: all of them); cavity / atrium: the structures
    the biplane ejection fraction is measured on (the ventricle's cavity, and
    the atrium whose contact marks its base); no cavity means no clinical metrics.
    """

    name: str
    structures: tuple[Structure, ...]
    derived: tuple[tuple[str, tuple[int, ...]], ...] = ()
    mean_over: tuple[str, ...] = ()
    cavity: str | None = None
    atrium: str | None = None

    def __post_init__(self) -> None:
        values = tuple(s.value for s in self.structures)
        if values != tuple(range(1, len(values) + 1)):
            raise ValueError(f"label set {self.name!r}: structure values must be 1, 2, ..., K in order, got {values}")
        names = [s.name for s in self.structures] + [name for name, _ in self.derived]
        if len(set(names)) != len(names) or "mean" in names:
            raise ValueError(f"label set {self.name!r}: region names must be unique and not 'mean', got {names}")
        for name, members in self.derived:
            if not members or not set(members) <= set(values):
                raise ValueError(f"label set {self.name!r}: derived region {name!r} has values {members} outside {values}")
        for role in (*self.mean_over, self.cavity, self.atrium):
            if role is not None and role not in self.names:
                raise ValueError(f"label set {self.name!r}: {role!r} is not one of its structures {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the structures, in value order."""
        return tuple(s.name for s in self.structures)

    @property
    def values(self) -> tuple[int, ...]:
        """Label values of the structures: 1..K."""
        return tuple(s.value for s in self.structures)

    @property
    def num_classes(self) -> int:
        """Classes of a label map: background plus the structures."""
        return len(self.structures) + 1

    @property
    def by_value(self) -> dict[int, str]:
        """Structure value -> short name."""
        return {s.value: s.name for s in self.structures}

    @property
    def titles(self) -> dict[int, str]:
        """Label value -> name for people, background (0) included."""
        return {0: "background", **{s.value: s.title for s in self.structures}}

    @property
    def regions(self) -> dict[str, tuple[int, ...]]:
        """Every evaluated region -> its label values: each structure alone, then the derived regions."""
        return {**{s.name: (s.value,) for s in self.structures}, **dict(self.derived)}

    @property
    def averaged(self) -> tuple[str, ...]:
        """The structures averaged into `mean`."""
        return self.mean_over or self.names

    def value(self, name: str) -> int:
        """The label value of structure `name`."""
        for s in self.structures:
            if s.name == name:
                return s.value
        raise KeyError(f"label set {self.name!r} has no structure {name!r}; its structures: {', '.join(self.names)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description that `from_dict` turns back into an equal label set."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LabelSet:
        """The label set `to_dict` described (lists from JSON become tuples)."""
        return cls(
            name=raw["name"],
            structures=tuple(Structure(**s) for s in raw["structures"]),
            derived=tuple((name, tuple(values)) for name, values in raw["derived"]),
            mean_over=tuple(raw["mean_over"]),
            cavity=raw["cavity"],
            atrium=raw["atrium"],
        )


#: CAMUS: LV cavity, myocardium, left atrium; the epicardium (cavity + wall) is evaluated too; EF from cavity and atrium
CAMUS_LABELS = LabelSet(
    name="camus",
    structures=(Structure(1, "lv", "LV cavity"), Structure(2, "myo", "myocardium"), Structure(3, "la", "left atrium")),
    derived=(("epi", (1, 2)),),
    cavity="lv",
    atrium="la",
)
