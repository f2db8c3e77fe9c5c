"""Independent truth for label-map tests: explicit loops and breadth-first searches, no scipy, no shifted-array tricks,
and a hand-made heart to run them on."""

from collections import deque

import numpy as np

FOUR = ((-1, 0), (1, 0), (0, -1), (0, 1))
EIGHT = (*FOUR, (-1, -1), (-1, 1), (1, -1), (1, 1))


def heart(h: int = 48, w: int = 40) -> np.ndarray:
    """A hand-made label map: LV rectangle, myocardium band open at the base, atrium below."""
    lab = np.zeros((h, w), np.uint8)
    lab[5:30, 8:32] = 2
    lab[10:30, 13:27] = 1
    lab[30:42, 12:28] = 3
    return lab


def _flood(mask: np.ndarray, seeds: list[tuple[int, int]], steps: tuple[tuple[int, int], ...]) -> np.ndarray:
    """The pixels of `mask` reachable from `seeds` through `mask` by `steps`."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    queue = deque()
    for r, c in seeds:
        if mask[r, c] and not seen[r, c]:
            seen[r, c] = True
            queue.append((r, c))
    while queue:
        r, c = queue.popleft()
        for dr, dc in steps:
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                seen[rr, cc] = True
                queue.append((rr, cc))
    return seen


def flood_components(mask: np.ndarray, eight: bool = True) -> list[np.ndarray]:
    """The connected components of `mask` (8- or 4-connected) as masks, in row-major order of their first pixel."""
    left = mask.copy()
    out = []
    for r, c in np.argwhere(mask):
        if left[r, c]:
            comp = _flood(left, [(r, c)], EIGHT if eight else FOUR)
            left &= ~comp
            out.append(comp)
    return out


def hole_pixels(mask: np.ndarray) -> np.ndarray:
    """Pixels outside `mask` that no 4-connected path outside `mask` joins to the image border."""
    outside = np.pad(~mask, 1, constant_values=True)
    return (outside & ~_flood(outside, [(0, 0)], FOUR))[1:-1, 1:-1]


def brute_boundary(mask: np.ndarray, image_edge: bool = True) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it; off the image counts as outside (image_edge) or inside."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for r in range(h):
        for c in range(w):
            if mask[r, c]:
                neighbours = [(r + dr, c + dc) for dr, dc in FOUR]
                off = [not (0 <= i < h and 0 <= j < w) for i, j in neighbours]
                out[r, c] = any((o and image_edge) or (not o and not mask[i, j]) for o, (i, j) in zip(off, neighbours, strict=True))
    return out


def masks(lab: np.ndarray) -> dict[str, np.ndarray]:
    """CAMUS's structure masks and the heart (label > 0) of one label map."""
    return {"lv": lab == 1, "myo": lab == 2, "la": lab == 3, "heart": lab > 0}
