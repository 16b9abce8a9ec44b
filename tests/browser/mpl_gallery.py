"""Matplotlib figures for the gallery test: one per kind of chart a script draws.

CONVERTED figures must come out as Plotly that looks like matplotlib's own rendering;
PICTURES must come out as the PNG of the real figure.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _rng():
    return np.random.default_rng(7)


def _iris():
    """scikit-learn's bundled iris.csv, read without importing scikit-learn (slow)."""
    import importlib.util
    from pathlib import Path

    home = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    table = np.loadtxt(home / "datasets" / "data" / "iris.csv", delimiter=",", skiprows=1)
    return table[:, :4], table[:, 4].astype(int)


def iris_types():
    """The seed's step 3 plot, as written there."""
    features, labels = _iris()
    figure = plt.figure(1, figsize=(4, 3))
    plt.scatter(features[:, 0], features[:, 1], c=labels, edgecolors="k", cmap=plt.cm.Paired)
    plt.xlabel("Sepal length")
    plt.ylabel("Sepal width")
    plt.xlim(3.8, 8.4)
    plt.ylim(1.5, 4.9)
    plt.xticks(())
    plt.yticks(())
    plt.title("Iris Types")
    return figure


def lines_and_legend():
    figure, ax = plt.subplots()
    x = np.linspace(0, 10, 50)
    ax.plot(x, np.sin(x), "o-", label="sin")
    ax.plot(x, np.cos(x), "--", color="red", lw=2, label="cos")
    ax.plot(x, np.sin(x) * 0.5, ":", label="half")
    ax.step(x[::5], np.cos(x[::5]) * 0.3, where="post", label="steps")
    ax.legend(loc="lower left")
    ax.grid(True)
    ax.set_title("Lines")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return figure


def scatter_sizes_and_colorbar():
    rng = _rng()
    figure, ax = plt.subplots()
    x, y = rng.random(60), rng.random(60)
    points = ax.scatter(x, y, c=x + y, s=400 * rng.random(60) + 20, cmap="plasma", alpha=0.8)
    figure.colorbar(points, ax=ax, label="x + y")
    ax.set_title("Sizes and a colormap")
    return figure


def bars_with_errors():
    figure, ax = plt.subplots()
    ax.bar(np.arange(4) - 0.2, [3, 5, 2, 4], width=0.4, label="a")
    ax.bar(np.arange(4) + 0.2, [2, 4, 3, 1], width=0.4, yerr=0.5, capsize=4, label="b")
    ax.set_xticks(range(4), ["one", "two", "three", "four"])
    ax.legend()
    ax.set_title("Bars")
    return figure


def horizontal_bars():
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.barh(["alpha", "beta", "gamma"], [5, 3, 7], color=["C2", "C3", "C4"], edgecolor="black")
    ax.set_xlabel("count")
    ax.invert_yaxis()
    return figure


def histograms():
    rng = _rng()
    figure, ax = plt.subplots()
    ax.hist(rng.normal(0, 1, 500), bins=20, alpha=0.6, label="normal")
    ax.hist(rng.normal(1.5, 0.7, 500), bins=20, alpha=0.6, label="shifted")
    ax.hist(rng.normal(-1, 0.5, 300), bins=15, histtype="step", color="k", label="step")
    ax.legend(loc="upper right")
    ax.set_title("Histograms")
    return figure


def error_bars():
    figure, ax = plt.subplots()
    x = np.arange(8)
    ax.errorbar(x, x**1.2, yerr=0.5 + x / 8, fmt="o", capsize=3, label="measured")
    ax.errorbar(x, x, xerr=0.3, fmt="s--", color="green", label="both ways")
    ax.legend(loc="upper left")
    return figure


def fills_and_spans():
    figure, ax = plt.subplots()
    x = np.linspace(0, 6, 100)
    ax.fill_between(x, np.sin(x), np.sin(x) + 1, color="orange", alpha=0.5)
    ax.fill_between(x, -1, np.cos(x) - 1, color="teal")
    ax.axhline(0.5, color="black", lw=1)
    ax.axvspan(2, 3, color="grey", alpha=0.3)
    ax.set_xlim(0, 6)
    return figure


def heatmap_with_colorbar():
    figure, ax = plt.subplots()
    image = ax.imshow(_rng().random((8, 10)), cmap="viridis")
    figure.colorbar(image, ax=ax, label="value")
    ax.set_title("Heatmap")
    return figure


def confusion_matrix():
    matrix = np.array([[12, 1, 0], [2, 9, 3], [0, 1, 14]])
    figure, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center")
    ax.set_xticks(range(3), ["cat", "dog", "bird"])
    ax.set_yticks(range(3), ["cat", "dog", "bird"])
    figure.colorbar(image)
    return figure


def rgb_image():
    gradient = np.linspace(0, 1, 64)
    pixels = np.dstack(
        [
            np.outer(gradient, np.ones(96)),
            np.outer(np.ones(64), gradient[:48].repeat(2)),
            np.full((64, 96), 0.5),
        ]
    )
    figure, ax = plt.subplots()
    ax.imshow(pixels)
    ax.axis("off")
    return figure


def mesh():
    x = np.linspace(0, 4, 21)
    y = np.linspace(0, 2, 11)
    values = np.sin(x[:-1])[None, :] * np.cos(y[:-1])[:, None]
    figure, ax = plt.subplots()
    collection = ax.pcolormesh(x, y, values, cmap="RdBu")
    figure.colorbar(collection, ax=ax)
    return figure


def subplots_grid():
    rng = _rng()
    figure, axes = plt.subplots(2, 2, figsize=(8, 6))
    axes[0, 0].plot(rng.random(20).cumsum())
    axes[0, 0].set_title("walk")
    axes[0, 1].scatter(rng.random(30), rng.random(30), color="purple", marker="^")
    axes[0, 1].set_title("triangles")
    axes[1, 0].bar(["a", "b", "c"], [1, 3, 2], color="tab:green")
    axes[1, 1].imshow(rng.random((5, 5)), cmap="magma")
    figure.suptitle("Four charts")
    figure.tight_layout()
    return figure


def twin_axes():
    figure, ax = plt.subplots()
    x = np.arange(10)
    ax.plot(x, x**2, color="C0")
    ax.set_ylabel("square")
    twin = ax.twinx()
    twin.plot(x, np.sqrt(x), color="C1", marker="o")
    twin.set_ylabel("root")
    return figure


def log_scales():
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    x = np.logspace(0, 3, 30)
    left.loglog(x, x**1.5, "s-")
    left.set_title("loglog")
    right.semilogy(np.arange(10), np.exp(np.arange(10)), "r^")
    right.set_title("semilogy")
    figure.tight_layout()
    return figure


def limits_ticks_and_annotations():
    figure, ax = plt.subplots()
    x = np.linspace(-3, 3, 61)
    ax.plot(x, x**3, color="navy")
    ax.set_xlim(-2, 2.5)
    ax.set_ylim(10, -10)
    ax.set_xticks([-2, -1, 0, 1, 2], ["-two", "-one", "zero", "one", "two"], rotation=30)
    ax.annotate("inflection", xy=(0, 0), xytext=(1, 6), arrowprops={"arrowstyle": "->"})
    ax.text(-1.8, -8, "note", fontsize=14, color="crimson")
    ax.set_title("Limits, ticks, notes", loc="left")
    return figure


def surface_3d():
    figure = plt.figure()
    ax = figure.add_subplot(projection="3d")
    x, y = np.meshgrid(np.linspace(-2, 2, 20), np.linspace(-2, 2, 20))
    ax.plot_surface(x, y, np.exp(-(x**2 + y**2)), cmap="viridis")
    return figure


def filled_contours():
    x, y = np.meshgrid(np.linspace(-2, 2, 50), np.linspace(-2, 2, 50))
    figure, ax = plt.subplots()
    contours = ax.contourf(x, y, np.exp(-(x**2 + y**2)), cmap="coolwarm")
    figure.colorbar(contours)
    return figure


def polar():
    figure = plt.figure()
    ax = figure.add_subplot(projection="polar")
    theta = np.linspace(0, 2 * np.pi, 100)
    ax.plot(theta, 1 + np.sin(3 * theta))
    return figure


CONVERTED = {
    "iris_types": iris_types,
    "lines_and_legend": lines_and_legend,
    "scatter_sizes_and_colorbar": scatter_sizes_and_colorbar,
    "bars_with_errors": bars_with_errors,
    "horizontal_bars": horizontal_bars,
    "histograms": histograms,
    "error_bars": error_bars,
    "fills_and_spans": fills_and_spans,
    "heatmap_with_colorbar": heatmap_with_colorbar,
    "confusion_matrix": confusion_matrix,
    "rgb_image": rgb_image,
    "mesh": mesh,
    "subplots_grid": subplots_grid,
    "twin_axes": twin_axes,
    "log_scales": log_scales,
    "limits_ticks_and_annotations": limits_ticks_and_annotations,
}
PICTURES = {"surface_3d": surface_3d, "filled_contours": filled_contours, "polar": polar}
