"""Matplotlib figures as Plotly JSON, faithfully, or else as a full-size PNG of the figure.

The figure is drawn first (without output), so what is read is what matplotlib would show:
colormaps resolved into colours, ticks located and labelled, layouts (tight, constrained,
equal aspect) applied. Every axes is then read as drawn: its place in the figure, limits,
scales, ticks and their labels, spines, grid, titles, legend and colorbar; every artist on
it is converted by pipelines/mpl_artists.py. A figure holding anything that module cannot
convert exactly (3D or polar axes, contours, tables, a colorbar of a non-linear norm, ...)
is reported as a PNG of the real figure at its own size, which is what ClearML does: a
picture that is right rather than an interactive chart that is wrong.
"""

import base64
import html
import io
import math
import re

from matplotlib.text import Text

from .mpl_artists import Unsupported, convert_axes_artists, rgba

FONT_FAMILY = "DejaVu Sans, Bitstream Vera Sans, Arial, sans-serif"
# Beyond this many values a chart is slow in a browser: such figures are sent as pictures.
MAX_VALUES = 250_000
# A PNG fallback is drawn at the figure's own size, up to this many pixels.
MAX_PNG_PIXELS = 4_000_000


def figure_to_plotly(figure) -> dict:
    """A Plotly figure dict for a matplotlib Figure (or the pyplot module: its current
    figure): converted when every part of it converts faithfully, a PNG otherwise."""
    if hasattr(figure, "gcf"):
        figure = figure.gcf()
    figure.draw_without_rendering()
    try:
        return _FigureConverter(figure).convert()
    except Unsupported as reason:
        return image_figure(figure, reason=str(reason))
    except Exception as error:  # noqa: BLE001 - an artist we misread: the picture is right
        return image_figure(figure, reason=f"conversion failed: {error!r}")


def image_figure(figure, reason: str = "") -> dict:
    """The figure as a PNG at its own size, as a Plotly figure holding only that image
    (the dashboard shows such a figure as the picture itself, the card's full width)."""
    if hasattr(figure, "gcf"):
        figure = figure.gcf()
    dpi = figure.dpi
    width, height = figure.get_size_inches() * dpi
    if width * height > MAX_PNG_PIXELS:
        dpi *= math.sqrt(MAX_PNG_PIXELS / (width * height))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor=figure.get_facecolor())
    encoded = base64.b64encode(buffer.getvalue()).decode()
    width, height = figure.get_size_inches() * dpi
    return {
        "data": [],
        "layout": {
            "images": [
                {
                    "source": f"data:image/png;base64,{encoded}",
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0,
                    "y": 1,
                    "sizex": 1,
                    "sizey": 1,
                    "xanchor": "left",
                    "yanchor": "top",
                    "sizing": "contain",
                    "layer": "above",
                }
            ],
            "width": round(width),
            "height": round(height),
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "meta": {"matplotlib": "image", "reason": reason},
        },
    }


def points(value_pt: float, dpi: float) -> float:
    """Points (matplotlib's unit for sizes and fonts) as pixels at the figure's dpi."""
    return float(value_pt) * dpi / 72.0


_MATH = re.compile(r"\$([^$]*)\$")


def plain_text(text: str) -> str:
    """Matplotlib text (with the simple mathtext tick labels use) as Plotly's HTML subset."""
    text = html.escape(str(text), quote=False)

    def math(match) -> str:
        body = match.group(1)
        body = re.sub(r"\\math(?:default|regular|rm)\{(.*)\}", r"\1", body)
        body = body.replace(r"\times", "×").replace(r"\cdot", "·").replace(r"\pm", "±")
        body = re.sub(r"\^\{([^}]*)\}", r"<sup>\1</sup>", body)
        body = re.sub(r"\^(\S)", r"<sup>\1</sup>", body)
        body = re.sub(r"_\{([^}]*)\}", r"<sub>\1</sub>", body)
        body = body.replace(r"\ ", " ").replace("\\", "")
        return body.replace("{", "").replace("}", "")

    return _MATH.sub(math, text).replace("\n", "<br>")


class _FigureConverter:
    def __init__(self, figure):
        self.figure = figure
        self.dpi = figure.dpi
        self.width = figure.bbox.width
        self.height = figure.bbox.height
        self.renderer = figure.canvas.get_renderer()
        self.data: list[dict] = []
        self.annotations: list[dict] = []
        self.layout: dict = {}
        self.traces_of: dict[int, dict] = {}  # id(artist) -> its trace, for colorbars
        self.legends: list[tuple[object, str]] = []

    def convert(self) -> dict:
        figure = self.figure
        plotted = [ax for ax in figure.axes if not hasattr(ax, "_colorbar")]
        if not plotted:
            raise Unsupported("a figure without axes")
        for ax in figure.axes:
            if type(ax).__name__ != "Axes":
                raise Unsupported(f"{type(ax).__name__} axes")
        ids = self._axis_ids(plotted)
        for ax in plotted:
            self._axes(ax, *ids[id(ax)])
        for ax in figure.axes:
            if hasattr(ax, "_colorbar"):
                self._colorbar(ax._colorbar)
        for text in figure.texts + [
            getattr(figure, name, None) for name in ("_suptitle", "_supxlabel", "_supylabel")
        ]:
            if text is not None:
                self._text(text)
        for legend in figure.legends:
            self._legend(legend, figure.axes)
        if sum(_count_values(trace) for trace in self.data) > MAX_VALUES:
            raise Unsupported(f"more than {MAX_VALUES} values")
        face = figure.get_facecolor()
        font_size = points(10, self.dpi)
        self.layout.update(
            {
                "height": round(self.height),
                # the figure's own titles are annotations where matplotlib drew them
                "title": {"text": ""},
                "margin": {"l": 0, "r": 0, "t": 0, "b": 0, "pad": 0, "autoexpand": False},
                "paper_bgcolor": rgba(face),
                "font": {"family": FONT_FAMILY, "size": font_size, "color": "black"},
                "showlegend": bool(self.legends),
                "hovermode": "closest",
                "annotations": self.annotations,
                "barmode": "overlay",
                "bargap": 0,
                "meta": {"matplotlib": "converted"},
            }
        )
        return finish({"data": self.data, "layout": self.layout})

    # ---------------------------------------------------------------- axes

    def _axis_ids(self, plotted) -> dict[int, tuple[str, str, dict]]:
        """Plotly axis ids per axes: its own x and y, or its twin's for the one it shares."""
        ids: dict[int, tuple[str, str, dict]] = {}
        count = 0
        for ax in plotted:
            twin = next(
                (
                    other
                    for other in plotted[: plotted.index(ax)]
                    if other in _twins(ax) and id(other) in ids and not ids[id(other)][2]
                ),
                None,
            )
            if twin is not None:
                tx, ty, _ = ids[id(twin)]
                shares_x = ax.get_shared_x_axes().joined(ax, twin)
                count += 1
                if shares_x:
                    ids[id(ax)] = (tx, f"y{count}", {"overlaying": ty})
                else:
                    ids[id(ax)] = (f"x{count}", ty, {"overlaying": tx})
                continue
            count += 1
            suffix = "" if count == 1 else str(count)
            ids[id(ax)] = (f"x{suffix}", f"y{suffix}", {})
        return ids

    def _axes(self, ax, x_id: str, y_id: str, twin: dict) -> None:
        traces = convert_axes_artists(ax, x_id, y_id, self.dpi, self.traces_of)
        self.data.extend(traces)
        position = ax.get_position()
        overlaying = twin.get("overlaying")
        if not overlaying or overlaying.startswith("y"):
            if not overlaying:
                self.layout[_layout_key(x_id)] = self._axis(
                    ax, ax.xaxis, [position.x0, position.x1], y_id
                )
            self.layout[_layout_key(y_id)] = self._axis(
                ax, ax.yaxis, [position.y0, position.y1], x_id, overlaying
            )
        else:
            self.layout[_layout_key(x_id)] = self._axis(
                ax, ax.xaxis, [position.x0, position.x1], y_id, overlaying
            )
        if not overlaying and ax.patch.get_visible():
            self.layout.setdefault("plot_bgcolor", rgba(ax.patch.get_facecolor()))
        elif not overlaying:
            self.layout.setdefault("plot_bgcolor", "rgba(0,0,0,0)")
        titles = [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)]
        for text in [*titles, *ax.texts, ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]:
            if text is not None:
                self._text(text)
        for artist in ax.get_children():
            if type(artist).__name__ == "Table":
                raise Unsupported("a table")
        legend = ax.get_legend()
        if legend is not None:
            self._legend(legend, [ax])

    def _axis(self, ax, axis, domain, anchor: str, overlaying: str | None = None) -> dict:
        which = axis.axis_name
        low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
        scale = axis.get_scale()
        result: dict = {
            "domain": [max(0.0, domain[0]), min(1.0, domain[1])],
            "anchor": anchor,
            "autorange": False,
            "zeroline": False,
            "fixedrange": False,
            "layer": "above traces",
        }
        if scale == "log":
            if low <= 0 or high <= 0:
                raise Unsupported("a log axis reaching zero")
            result["type"] = "log"
            result["range"] = [math.log10(low), math.log10(high)]
        elif scale == "linear":
            result["type"] = "linear"
            result["range"] = [low, high]
        else:
            raise Unsupported(f"a {scale} axis scale")
        if overlaying:
            result["overlaying"] = overlaying
        if not ax.axison or not axis.get_visible():
            result.update({"visible": False, "showgrid": False})
            return result
        result.update(self._ticks(ax, axis, low, high))
        spines = ("bottom", "top") if which == "x" else ("left", "right")
        near, far = (ax.spines[name] for name in spines)
        side = result.get("side", spines[0])
        own, other = (far, near) if side == spines[1] else (near, far)
        line = own if own.get_visible() else other
        result.update(
            {
                "showline": own.get_visible() or other.get_visible(),
                "mirror": own.get_visible() and other.get_visible() and not overlaying,
                "linecolor": rgba(line.get_edgecolor()),
                "linewidth": points(line.get_linewidth(), self.dpi),
            }
        )
        grid = [g for g in axis.get_gridlines() if g.get_visible()]
        if grid:
            result.update(
                {
                    "showgrid": True,
                    "gridcolor": rgba(grid[0].get_color(), grid[0].get_alpha()),
                    "gridwidth": points(grid[0].get_linewidth(), self.dpi),
                }
            )
        else:
            result["showgrid"] = False
        label = axis.label
        if label.get_visible() and label.get_text():
            result["title"] = {
                "text": plain_text(label.get_text()),
                "font": self._font(label),
                "standoff": points(axis.labelpad, self.dpi),
            }
        return result

    def _ticks(self, ax, axis, low: float, high: float) -> dict:
        lo, hi = min(low, high), max(low, high)
        span = (hi - lo) or 1.0
        # matplotlib keeps spare Tick objects past the located ones: only those count
        located = axis.get_major_ticks()[: len(axis.get_majorticklocs())]
        shown = [tick for tick in located if lo - span * 1e-9 <= tick.get_loc() <= hi + span * 1e-9]
        values, texts = [], []
        labelled_far = False
        sample = None
        for tick in shown:
            if not (tick.tick1line.get_visible() or tick.tick2line.get_visible()) and not (
                tick.label1.get_visible() or tick.label2.get_visible()
            ):
                continue
            values.append(float(tick.get_loc()))
            label = tick.label2 if tick.label2.get_visible() else tick.label1
            labelled_far = labelled_far or (
                tick.label2.get_visible() and not tick.label1.get_visible()
            )
            texts.append(plain_text(label.get_text()) if label.get_visible() else "")
            sample = sample or tick
        result: dict = {"tickmode": "array", "tickvals": values, "ticktext": texts}
        if sample is None:
            result.update({"ticks": "", "showticklabels": False})
            return result
        mark = sample.tick2line if labelled_far else sample.tick1line
        direction = getattr(sample, "_tickdir", "out")
        label = sample.label2 if labelled_far else sample.label1
        result.update(
            {
                "ticks": ""
                if not mark.get_visible()
                else ("inside" if direction == "in" else "outside"),
                "ticklen": points(mark.get_markersize(), self.dpi),
                "tickwidth": points(mark.get_markeredgewidth(), self.dpi),
                "tickcolor": rgba(mark.get_markeredgecolor()),
                "showticklabels": any(texts),
                "tickfont": self._font(label),
                "tickangle": -label.get_rotation() if label.get_rotation() else 0,
                "ticklabelstandoff": points(sample.get_pad(), self.dpi),
            }
        )
        if labelled_far:
            result["side"] = "top" if axis.axis_name == "x" else "right"
        minor = [
            float(loc)
            for loc in axis.get_minorticklocs()
            if lo <= loc <= hi and not any(math.isclose(loc, v) for v in values)
        ]
        minor_ticks = axis.get_minor_ticks()
        if minor and minor_ticks and minor_ticks[0].tick1line.get_visible():
            line = minor_ticks[0].tick1line
            result["minor"] = {
                "tickmode": "array",
                "tickvals": minor,
                "ticks": result["ticks"],
                "ticklen": points(line.get_markersize(), self.dpi),
                "tickwidth": points(line.get_markeredgewidth(), self.dpi),
                "tickcolor": rgba(line.get_markeredgecolor()),
                "showgrid": False,
            }
        return result

    # ---------------------------------------------------------------- text, legends, colorbars

    def _font(self, text) -> dict:
        return {
            "size": points(text.get_fontsize(), self.dpi),
            "color": rgba(text.get_color(), text.get_alpha()),
            "family": FONT_FAMILY,
        }

    def _paper(self, x: float, y: float) -> tuple[float, float]:
        return x / self.width, y / self.height

    def _text(self, text) -> None:
        """A text artist as an annotation at the place matplotlib drew it."""
        if not text.get_visible() or not text.get_text().strip():
            return
        # An annotation's own extent includes its arrow: take the text's alone.
        box = Text.get_window_extent(text, renderer=self.renderer)
        x, y = self._paper((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        body = plain_text(text.get_text())
        if text.get_weight() in ("bold", "heavy", "extra bold", "black") or (
            isinstance(text.get_weight(), int | float) and text.get_weight() >= 600
        ):
            body = f"<b>{body}</b>"
        if text.get_style() in ("italic", "oblique"):
            body = f"<i>{body}</i>"
        annotation = {
            "text": body,
            "xref": "paper",
            "yref": "paper",
            "x": x,
            "y": y,
            "xanchor": "center",
            "yanchor": "middle",
            "showarrow": False,
            "font": self._font(text),
            "textangle": -text.get_rotation(),
            "align": {"left": "left", "right": "right"}.get(
                text.get_horizontalalignment(), "center"
            ),
            "borderpad": 0,
        }
        patch = text.get_bbox_patch()
        if patch is not None and patch.get_visible():
            annotation["bgcolor"] = rgba(patch.get_facecolor())
            annotation["bordercolor"] = rgba(patch.get_edgecolor())
            annotation["borderwidth"] = points(patch.get_linewidth(), self.dpi)
            annotation["borderpad"] = points(text.get_fontsize() * 0.3, self.dpi)
        arrow = getattr(text, "arrow_patch", None)
        if arrow is not None and arrow.get_visible():
            target = self._annotated_point(text)
            tx, ty = self._paper(*target)
            centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
            annotation.update(
                {
                    "x": tx,
                    "y": ty,
                    "showarrow": True,
                    "ax": centre[0] - target[0],
                    "ay": target[1] - centre[1],
                    "axref": "pixel",
                    "ayref": "pixel",
                    "arrowcolor": rgba(arrow.get_edgecolor()),
                    "arrowwidth": max(points(arrow.get_linewidth(), self.dpi), 0.5),
                    "arrowhead": 2,
                    "standoff": 0,
                }
            )
        self.annotations.append(annotation)

    def _annotated_point(self, annotation) -> tuple[float, float]:
        coords = annotation.xycoords
        if callable(coords) or not isinstance(coords, str):
            raise Unsupported("an annotation with custom coordinates")
        ax = annotation.axes
        transforms = {
            "data": ax.transData if ax else None,
            "axes fraction": ax.transAxes if ax else None,
            "figure fraction": self.figure.transFigure,
            "figure pixels": None,
        }
        if coords not in transforms:
            raise Unsupported(f"an annotation in {coords!r} coordinates")
        transform = transforms[coords]
        x, y = annotation.xy
        if ax is not None and coords == "data":
            x, y = ax.convert_xunits(x), ax.convert_yunits(y)
        return tuple(transform.transform((x, y))) if transform is not None else (x, y)

    def _legend(self, legend, axes_list) -> None:
        if not legend.get_visible():
            return
        number = len(self.legends) + 1
        name = "legend" if number == 1 else f"legend{number}"
        self.legends.append((legend, name))
        labels = [text.get_text() for text in legend.get_texts()]
        taken = set()
        for trace in self.data:
            if trace.get("_axes") not in {id(ax) for ax in axes_list}:
                continue
            label = trace.get("name", "")
            if label in labels and label not in taken and "legend" not in trace:
                taken.add(label)
                trace["showlegend"] = True
                trace["legend"] = name
                trace["legendrank"] = labels.index(label) + 1
        box = legend.get_window_extent(renderer=self.renderer)
        x0, y1 = self._paper(box.x0, box.y1)
        frame = legend.get_frame()
        texts = legend.get_texts()
        self.layout[name] = {
            "x": x0,
            "y": y1,
            "xanchor": "left",
            "yanchor": "top",
            "xref": "paper",
            "yref": "paper",
            "bgcolor": rgba(frame.get_facecolor()) if legend.get_frame_on() else "rgba(0,0,0,0)",
            "bordercolor": rgba(frame.get_edgecolor()),
            "borderwidth": points(frame.get_linewidth(), self.dpi) if legend.get_frame_on() else 0,
            "font": self._font(texts[0]) if texts else {},
            "traceorder": "normal",
            "itemsizing": "constant",
            "tracegroupgap": 0,
        }
        title = legend.get_title()
        if title.get_visible() and title.get_text():
            self.layout[name]["title"] = {"text": plain_text(title.get_text())}

    def _colorbar(self, colorbar) -> None:
        trace = self.traces_of.get(id(colorbar.mappable))
        if trace is None or "_colorscale_at" not in trace:
            raise Unsupported("a colorbar of something not converted with its colour scale")
        if type(colorbar.norm).__name__ != "Normalize":
            raise Unsupported(f"a colorbar of a {type(colorbar.norm).__name__}")
        cax = colorbar.ax
        box = cax.get_position()
        vertical = colorbar.orientation == "vertical"
        axis = cax.yaxis if vertical else cax.xaxis
        low, high = cax.get_ylim() if vertical else cax.get_xlim()
        ticks = self._ticks(cax, axis, low, high)
        label = axis.label
        spec = {
            "orientation": "v" if vertical else "h",
            "x": box.x0 if vertical else box.x0,
            "y": box.y0,
            "xanchor": "left",
            "yanchor": "bottom",
            "len": box.height if vertical else box.width,
            "lenmode": "fraction",
            "thickness": (box.width * self.width) if vertical else (box.height * self.height),
            "thicknessmode": "pixels",
            "xpad": 0,
            "ypad": 0,
            "outlinewidth": points(colorbar.outline.get_linewidth(), self.dpi),
            "outlinecolor": rgba(colorbar.outline.get_edgecolor()),
            "tickmode": "array",
            "tickvals": ticks["tickvals"],
            "ticktext": ticks["ticktext"],
            "ticks": ticks.get("ticks", "outside"),
            "ticklen": ticks.get("ticklen", 3),
            "tickfont": ticks.get("tickfont", {}),
            "ticklabelposition": "outside",
        }
        if label.get_text():
            spec["title"] = {
                "text": plain_text(label.get_text()),
                "side": "right" if vertical else "bottom",
                "font": self._font(label),
            }
        holder = trace[trace["_colorscale_at"]] if trace["_colorscale_at"] else trace
        holder["showscale"] = True
        holder["colorbar"] = spec


def _twins(ax) -> list:
    twinned = getattr(ax, "_twinned_axes", None)
    return list(twinned.get_siblings(ax)) if twinned is not None else []


def _layout_key(axis_id: str) -> str:
    return f"{axis_id[0]}axis{axis_id[1:]}"


def _count_values(trace: dict) -> int:
    total = 0
    for key in ("x", "y", "z"):
        value = trace.get(key)
        if isinstance(value, list):
            total += len(value) * (len(value[0]) if value and isinstance(value[0], list) else 1)
    return total


def finish(figure: dict) -> dict:
    """Drop the converter's private bookkeeping keys from the traces."""
    for trace in figure.get("data", []):
        for key in [k for k in trace if k.startswith("_")]:
            del trace[key]
    return figure
