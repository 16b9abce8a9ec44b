"""How alike two renderings of one chart are: matplotlib's own PNG and our Plotly in Chromium.

Two renderers never agree pixel for pixel (fonts, antialiasing, marker outlines), so the
comparison is tolerant where they legitimately differ and strict where a conversion can be
wrong. It has two parts, and a chart must pass both:

- `structure`: the structural similarity (SSIM, Wang et al. 2004) of the two images in
  grayscale, downscaled 3x by area averaging so that text hinting and one-pixel offsets
  do not count. It sees where things are: wrong limits or ticks move every mark, a
  missing colorbar or legend leaves a blank where a striped block should be.
- `colour`: how much of the two images' ink (every pixel that is not near-white) falls in
  the same colour bins (4 x 4 x 4 levels of RGB), as a histogram intersection in [0, 1].
  It sees what colour things are: points drawn black instead of their colormap colours,
  a colormap swapped, a heatmap or colorbar gone, even where the layout is right.
"""

import io

import numpy as np
from PIL import Image

DOWNSCALE = 3
WINDOW = 7
TILES = 4
WHITE = 175


def load(png: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if size and image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float64)


def _box_mean(array: np.ndarray, window: int) -> np.ndarray:
    """The mean over every window x window block (valid positions only), by summed areas."""
    summed = np.pad(array, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (
        summed[window:, window:]
        - summed[:-window, window:]
        - summed[window:, :-window]
        + summed[:-window, :-window]
    ) / (window * window)


def structure(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the grayscale images, downscaled by DOWNSCALE."""

    def gray(rgb: np.ndarray) -> np.ndarray:
        image = Image.fromarray(rgb.astype(np.uint8)).convert("L")
        small = image.resize(
            (image.width // DOWNSCALE, image.height // DOWNSCALE), Image.Resampling.BOX
        )
        return np.asarray(small, dtype=np.float64)

    x, y = gray(a), gray(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x, WINDOW), _box_mean(y, WINDOW)
    vx = _box_mean(x * x, WINDOW) - mx * mx
    vy = _box_mean(y * y, WINDOW) - my * my
    cov = _box_mean(x * y, WINDOW) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    rows = np.array_split(np.arange(ssim.shape[0]), TILES)
    cols = np.array_split(np.arange(ssim.shape[1]), TILES)
    return float(min(ssim[np.ix_(r, c)].mean() for r in rows for c in cols))


def colour(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection of the images' non-white pixels over 64 RGB bins."""

    def histogram(rgb: np.ndarray) -> np.ndarray:
        pixels = rgb.reshape(-1, 3)
        ink = pixels[(pixels < WHITE).any(axis=1)]
        if not len(ink):
            return np.zeros(64)
        bins = (ink // 64).astype(int)
        counts = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64)
        return counts / len(pixels)

    ha, hb = histogram(a), histogram(b)
    total = max(ha.sum(), hb.sum())
    return float(np.minimum(ha, hb).sum() / total) if total else 1.0


def compare(expected_png: bytes, actual_png: bytes) -> dict:
    expected = load(expected_png)
    actual = load(actual_png, size=(expected.shape[1], expected.shape[0]))
    return {
        "structure": structure(expected, actual),
        "colour": colour(expected, actual),
        "edges": edge_match(expected, actual),
    }


def _edges(rgb: np.ndarray) -> np.ndarray:
    gray = rgb.mean(axis=2)
    gx = np.abs(np.diff(gray, axis=1, prepend=gray[:, :1]))
    gy = np.abs(np.diff(gray, axis=0, prepend=gray[:1, :]))
    return np.maximum(gx, gy) > 40


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def edge_match(a: np.ndarray, b: np.ndarray, radius: int = 3, tiles: int = 4) -> float:
    ea, eb = _edges(a), _edges(b)
    da, db = _dilate(ea, radius), _dilate(eb, radius)
    rows = np.array_split(np.arange(ea.shape[0]), tiles)
    cols = np.array_split(np.arange(ea.shape[1]), tiles)
    worst = 1.0
    significant = 0.02 * max(ea.sum(), eb.sum())
    for r in rows:
        for c in cols:
            ta, tb = ea[np.ix_(r, c)], eb[np.ix_(r, c)]
            if max(ta.sum(), tb.sum()) < significant:
                continue
            recall = (ta & db[np.ix_(r, c)]).sum() / max(ta.sum(), 1)
            precision = (tb & da[np.ix_(r, c)]).sum() / max(tb.sum(), 1)
            worst = min(worst, 2 * recall * precision / max(recall + precision, 1e-9))
    return float(worst)
