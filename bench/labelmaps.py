"""The one toolkit for label maps: overlap counts and Dice, boxes, boundaries, components, holes and repair.

Noise, metrics, refurbishers and plots all call these, so that a number computed
in two places is computed one way. Label maps are uint8 arrays with the values of
a `LabelSet` (0 background, structures 1..K); masks are bool arrays.

- Dice of two masks = 2 |A & B| / (|A| + |B|), and 1 when both are empty (a
  structure absent from both is drawn right), never NaN.
- Boundary of a mask = its pixels with a 4-neighbour outside it.
- Components are 8-connected (a diagonal touch joins) unless said otherwise;
  holes are the pixels outside a mask that no 4-connected path outside it joins
  to the image border (the dual connectivity, so a hole and its rim agree).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from bench.labelset import CAMUS_LABELS, LabelSet

#: the 3 x 3 structuring element of 8-connectivity
EIGHT = np.ones((3, 3), dtype=bool)
#: images per bincount pass of `confusion` (bounds the temporary index array)
_CHUNK = 64


# --------------------------------------------------------------------------- overlap and Dice


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-image pixel counts (N, K, K) of (pred label, truth label) for label maps (N, H, W) with values below K.

    One bincount pass over all pixels, from which every region's Dice and
    emptiness follow without another look at the images.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must be equal (N, H, W)")
    if max(int(pred.max(initial=0)), int(truth.max(initial=0))) >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    k2 = num_classes * num_classes
    out = np.empty((len(pred), num_classes, num_classes), dtype=np.int64)
    for start in range(0, len(pred), _CHUNK):
        p, t = pred[start : start + _CHUNK], truth[start : start + _CHUNK]
        code = p.astype(np.intp) * num_classes + t
        code += (np.arange(len(p), dtype=np.intp) * k2)[:, None, None]
        out[start : start + _CHUNK] = np.bincount(code.ravel(), minlength=k2 * len(p)).reshape(len(p), num_classes, num_classes)
    return out


def region_counts(counts: np.ndarray, values: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels in both, in pred, in truth) of the region made of label `values`, per image, from `confusion` counts."""
    v = list(values)
    return counts[:, v][:, :, v].sum((1, 2)), counts[:, v].sum((1, 2)), counts[:, :, v].sum((1, 2))


def dice_from_counts(inter: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice 2 |A & B| / (|A| + |B|) from pixel counts (any shape); 1 where both masks are empty."""
    total = pred + truth
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def dice_per_structure(pred: np.ndarray, truth: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> dict[str, np.ndarray]:
    """Per-image Dice (N,) for each structure name, from label maps (N, H, W)."""
    counts = confusion(pred, truth, label_set.num_classes)
    return {s.name: dice_from_counts(*region_counts(counts, (s.value,))) for s in label_set.structures}


def label_dice(a: np.ndarray, b: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> np.ndarray:
    """Per-sample mean Dice over the averaged structures of two stacks of label maps (N, H, W): how alike two labels are."""
    per = dice_per_structure(a, b, label_set)
    return np.mean([per[name] for name in label_set.averaged], axis=0)


# --------------------------------------------------------------------------- masks, boxes, boundaries


def region_mask(labels: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the pixels whose label is one of `values`."""
    mask = labels == values[0]
    for value in values[1:]:
        mask |= labels == value
    return mask


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """Bounding box of `mask`'s True pixels grown by `margin` (clipped to the image), or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, h)), slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, w)))


def boundary(masks: np.ndarray, image_edge: bool = True) -> np.ndarray:
    """Pixels of masks (..., H, W) with a 4-neighbour outside the mask.

    image_edge: pixels outside the image count as outside the mask, so a mask
    cut by the image frame has a boundary along it (the metrics' definition);
    False counts them as inside, for drawings where the frame is no contour.
    """
    inner = masks.copy()
    inner[..., 1:, :] &= masks[..., :-1, :]
    inner[..., :-1, :] &= masks[..., 1:, :]
    inner[..., :, 1:] &= masks[..., :, :-1]
    inner[..., :, :-1] &= masks[..., :, 1:]
    if image_edge:
        inner[..., 0, :] = False
        inner[..., -1, :] = False
        inner[..., :, 0] = False
        inner[..., :, -1] = False
    return masks & ~inner


def touching(mask: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour in `mask` (H, W) (outside the image is not in it): where a region borders another."""
    out = np.zeros_like(mask)
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


# --------------------------------------------------------------------------- components and holes


def n_components(mask: np.ndarray) -> int:
    """Number of 8-connected components of `mask` (labelled on its bounding box only: labelling costs per pixel)."""
    box = bounding_box(mask)
    return 0 if box is None else int(ndimage.label(mask[box], EIGHT)[1])


def largest_component(mask: np.ndarray, eight: bool = True) -> np.ndarray:
    """The largest connected component of `mask` (8-connected, or 4-connected with eight=False; ties: the first found)."""
    lab, n = ndimage.label(mask, EIGHT if eight else None)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def holes(mask: np.ndarray) -> np.ndarray:
    """Pixels not in `mask` that no 4-connected path of non-mask pixels joins to the image border."""
    lab, n = ndimage.label(~mask)
    if n == 0:
        return np.zeros_like(mask)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    inside = np.ones(n + 1, dtype=bool)
    inside[border] = False
    inside[0] = False
    return inside[lab]


def fill_nearest(out: np.ndarray, where: np.ndarray, source: np.ndarray) -> None:
    """Give each pixel of `where` the label of the nearest pixel of `source` (in place).

    Used where every `where` pixel reaches its nearest source through `where`
    pixels only (dropped fragments, enclosed holes), so that source pixel is
    next to `where` and the bounding box of `where` plus one pixel holds it.
    """
    box = bounding_box(where, 1)
    if box is None:
        return
    src, sub, dst = source[box], out[box], where[box]
    if not src.any():
        sub[dst] = 0
        return
    idx = ndimage.distance_transform_edt(~src, return_distances=False, return_indices=True)
    sub[dst] = sub[idx[0][dst], idx[1][dst]]


@functools.cache
def _euler_table(num_classes: int) -> np.ndarray:
    """(K, C^4): for the masks of structures 1..K-1 and the foreground, and each 2x2 quad of labels, 4 x its Euler contribution.

    8-connected Euler number by Gray's quad counts; C = num_classes labels.
    """
    masks = [{v} for v in range(1, num_classes)] + [set(range(1, num_classes))]
    table = np.zeros((len(masks), num_classes**4), dtype=np.int64)
    for code in range(num_classes**4):
        quad = [(code // num_classes**k) % num_classes for k in range(4)]  # (top-left, top-right, bottom-left, bottom-right)
        for row, members in enumerate(masks):
            bits = [q in members for q in quad]
            n = sum(bits)
            table[row, code] = 1 if n == 1 else -1 if n == 3 else -2 if n == 2 and bits[0] == bits[3] else 0
    return table


def topology(label: np.ndarray, label_set: LabelSet = CAMUS_LABELS, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Components (8-connected) and holes of the mask of every structure and of the foreground (label > 0) of one label map.

    Returns two int arrays (K + 1,), structures in value order, foreground last.
    Holes come from the Euler number (components - holes, by Gray's 2 x 2 quad
    counts), so only the components need a labelling pass. `which` (bool (K + 1,))
    limits the work to some masks; the others read 0 components and 0 holes.
    """
    c = label_set.num_classes
    pad = np.pad(label, 1).astype(np.intp)
    quads = pad[:-1, :-1] + c * pad[:-1, 1:] + c**2 * pad[1:, :-1] + c**3 * pad[1:, 1:]
    euler = _euler_table(c) @ np.bincount(quads.ravel(), minlength=c**4) // 4
    which = np.ones(c, dtype=bool) if which is None else which
    masks = (*label_set.values, 0)
    comps = np.array([n_components(label == s if s else label > 0) if w else 0 for s, w in zip(masks, which, strict=True)])
    return comps, np.where(which, comps - euler, 0)


# --------------------------------------------------------------------------- repair


def make_valid(clean: np.ndarray, noisy: np.ndarray, label_set: LabelSet = CAMUS_LABELS, max_rounds: int = 6) -> np.ndarray:
    """Repair a corrupted label so that it is a label map the clean one could have been.

    Values outside the label set become background. For each structure whose
    clean mask is one 8-connected component (or absent), only the largest
    component of the noisy mask is kept and the dropped pixels take the nearest
    remaining label (so an island inside another structure joins it). If the
    clean foreground (label > 0) has no hole, background enclosed by the noisy
    foreground takes the nearest structure. Repeated until nothing changes. One
    structure may enclose another (a wall closed across the mitral plane): that
    is a wrong label, not an invalid one. The image border counts as outside, so
    give whole images or crops that hold every non-zero pixel of both labels.
    """
    k = len(label_set.structures)
    out = np.where(noisy > k, 0, noisy).astype(np.uint8)
    comps, hole_count = topology(out, label_set)
    if (comps[:k] <= 1).all() and hole_count[k] == 0:
        return out  # the common case: nothing to repair
    clean_comps, clean_holes = topology(clean, label_set, np.append(comps[:k] > 1, hole_count[k] > 0))
    single = clean_comps[:k] <= 1
    holeless = clean_holes[k] == 0
    for _ in range(max_rounds):
        multi = np.flatnonzero(single & (comps[:k] > 1))
        if not (multi.size or (holeless and hole_count[k] > 0)):
            break
        dropped = np.zeros(out.shape, dtype=bool)
        for i in multi:
            m = out == i + 1
            dropped |= m & ~largest_component(m)
        if dropped.any():
            fill_nearest(out, dropped, ~dropped)
        if holeless:
            hole = holes(out > 0)
            if hole.any():
                fill_nearest(out, hole, out > 0)
        comps, hole_count = topology(out, label_set)
    return out


def clean_label_map(pred: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> np.ndarray:
    """A prediction (H, W) made a plausible label: the largest 4-connected component per structure, background holes filled.

    Structures in value order; a background hole enclosed by a structure (after
    the earlier ones' holes are filled) takes that structure's value.
    """
    out = np.zeros_like(pred)
    for value in label_set.values:
        mask = pred == value
        if mask.any():
            out[largest_component(mask, eight=False)] = value
    for value in label_set.values:
        out[holes(out == value) & (out == 0)] = value
    return out
