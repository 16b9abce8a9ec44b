"""The artists of one drawn matplotlib axes as Plotly traces (see pipelines/mpl.py).

Only artists with a faithful Plotly form are converted: lines (styles, steps, markers),
scatters (shapes, sizes, per-point colours and colormaps), bars and histograms, error
bars, line collections, fills and other patches, images and rectilinear meshes. Anything
else raises Unsupported, and the whole figure is then sent as a PNG.
"""

import base64
import io
import math

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.markers import MarkerStyle

# At most this many cells are sent as a heatmap; a larger image is sent as its pixels.
MAX_HEATMAP_CELLS = 90_000
_PLAIN_NORM = "Normalize"
_SYMBOLS = {
    "o": "circle",
    "s": "square",
    "^": "triangle-up",
    "v": "triangle-down",
    "<": "triangle-left",
    ">": "triangle-right",
    "D": "diamond",
    "d": "diamond-tall",
    "p": "pentagon",
    "h": "hexagon",
    "H": "hexagon2",
    "*": "star",
    "8": "octagon",
    "P": "cross",
    "X": "x",
    "+": "cross-thin-open",
    "x": "x-thin-open",
    "|": "line-ns-open",
    "_": "line-ew-open",
    ".": "circle",
    ",": "square",
}
_OPEN = {"+", "x", "|", "_"}
_STEPS = {"steps": "vh", "steps-pre": "vh", "steps-post": "hv", "steps-mid": "hvh"}
_DASHES = {"--": "dash", ":": "dot", "-.": "dashdot", "dashed": "dash", "dotted": "dot"}
_SKIPPED = {"Spine", "XAxis", "YAxis", "Text", "Annotation", "Legend"}


class Unsupported(Exception):
    """Something in the figure has no faithful Plotly form: the figure is sent as a PNG."""


def rgba(color, alpha=None) -> str:
    r, g, b, a = mcolors.to_rgba(color, alpha)
    return f"rgba({round(r * 255)},{round(g * 255)},{round(b * 255)},{round(a, 3)})"


def _px(value_pt, dpi: float) -> float:
    return float(value_pt) * dpi / 72.0


def _floats(values) -> list:
    array = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan).ravel()
    return [v if math.isfinite(v) else None for v in array.tolist()]


def _to_data(ax, transform, xy) -> np.ndarray:
    """Points in an artist's coordinates as data coordinates of `ax`."""
    xy = np.ma.filled(np.ma.asarray(xy, dtype=float), np.nan).reshape(-1, 2)
    if transform is ax.transData or transform == ax.transData:
        return xy
    return ax.transData.inverted().transform(transform.transform(xy))


def colorscale(cmap) -> list:
    """A Plotly colorscale drawing values as `cmap` does: a listed colormap of few colours
    in steps, a smooth one sampled finely enough to look the same."""
    if cmap.N <= 64:
        scale = []
        for index in range(cmap.N):
            colour = rgba(cmap(index))
            scale += [[index / cmap.N, colour], [(index + 1) / cmap.N, colour]]
        return scale
    return [[k / 32, rgba(cmap(k / 32))] for k in range(33)]


def _symbol(path) -> str:
    for marker, symbol in _SYMBOLS.items():
        style = MarkerStyle(marker)
        reference = style.get_path().transformed(style.get_transform())
        if reference.vertices.shape == path.vertices.shape and np.allclose(
            reference.vertices, path.vertices, atol=1e-6
        ):
            return symbol
    raise Unsupported("a custom scatter marker")


def convert_axes_artists(ax, x_id: str, y_id: str, dpi: float, traces_of: dict) -> list[dict]:
    """Every data artist of `ax`, in drawing order, as Plotly traces on axes x_id/y_id."""
    converter = _Artists(ax, x_id, y_id, dpi, traces_of)
    return converter.convert()


class _Artists:
    def __init__(self, ax, x_id, y_id, dpi, traces_of):
        self.ax = ax
        self.x_id, self.y_id = x_id, y_id
        self.dpi = dpi
        self.traces_of = traces_of
        self.traces: list[dict] = []
        self.consumed: set[int] = {id(ax.patch)}
        self.errors: list[tuple[object, object]] = []  # (container, data artist)

    def convert(self) -> list[dict]:
        ax = self.ax
        bars = {}
        for container in ax.containers:
            kind = type(container).__name__
            if kind == "BarContainer":
                for patch in container.patches:
                    bars[id(patch)] = container
                if container.errorbar is not None:
                    self.errors.append((container.errorbar, container))
            elif kind == "ErrorbarContainer":
                data_line, caplines, barcols = container.lines
                self.consumed.update(id(a) for a in (*caplines, *barcols))
                if data_line is not None:
                    self.errors.append((container, data_line))
                    # The legend names the container; its line is "_nolegend_".
                    if self._label(container) and not self._label(data_line):
                        data_line.set_label(container.get_label())
            elif kind == "StemContainer":
                pass
            else:
                raise Unsupported(f"a {kind}")
        seen_bars: set[int] = set()
        artists = sorted(ax.get_children(), key=lambda artist: artist.get_zorder())
        for artist in artists:
            kind = type(artist).__name__
            if id(artist) in self.consumed or kind in _SKIPPED or not artist.get_visible():
                continue
            if id(artist) in bars:
                container = bars[id(artist)]
                if id(container) not in seen_bars:
                    seen_bars.add(id(container))
                    self._add(container, self._bars(container))
                continue
            method = getattr(self, f"_{kind}", None)
            if method is None:
                if kind in ("Axes",):
                    continue
                if hasattr(artist, "get_path") and hasattr(artist, "get_facecolor"):
                    method = self._patch
                else:
                    raise Unsupported(f"a {kind}")
            self._add(artist, method(artist))
        for container, data_artist in self.errors:
            self._error_bars(container, data_artist)
        return self.traces

    def _add(self, artist, traces) -> None:
        for trace in traces if isinstance(traces, list) else [traces]:
            if trace is None:
                continue
            trace.update({"xaxis": self.x_id, "yaxis": self.y_id, "_axes": id(self.ax)})
            trace.setdefault("showlegend", False)
            self.traces.append(trace)
            self.traces_of.setdefault(id(artist), trace)

    def _label(self, artist) -> str:
        label = str(artist.get_label() or "")
        return "" if label.startswith("_") else label

    # ---------------------------------------------------------------- lines and markers

    def _Line2D(self, line) -> dict | None:
        if line.get_markevery() is not None:
            raise Unsupported("a line with markevery")
        xy = _to_data(self.ax, line.get_transform(), line.get_xydata())
        style = line.get_linestyle()
        marker = line.get_marker()
        has_line = style not in ("None", "none", "", " ") and line.get_linewidth() > 0
        has_marker = marker not in ("None", "none", "", " ", None)
        if not has_line and not has_marker:
            return None
        mode = "+".join(m for m, on in (("lines", has_line), ("markers", has_marker)) if on)
        trace = {
            "type": "scatter",
            "mode": mode,
            "x": _floats(xy[:, 0]),
            "y": _floats(xy[:, 1]),
            "name": self._label(line),
            "connectgaps": False,
        }
        alpha = line.get_alpha()
        if has_line:
            trace["line"] = {
                "color": rgba(line.get_color(), alpha),
                "width": _px(line.get_linewidth(), self.dpi),
                "dash": self._dash(style, getattr(line, "_dash_pattern", None)),
                "shape": _STEPS.get(line.get_drawstyle(), "linear"),
            }
        if has_marker:
            if not isinstance(marker, str) or marker not in _SYMBOLS:
                raise Unsupported(f"the line marker {marker!r}")
            symbol = _SYMBOLS[marker]
            size = _px(line.get_markersize(), self.dpi)
            if marker == ".":
                size *= 0.5
            edge = rgba(line.get_markeredgecolor(), alpha)
            face = line.get_markerfacecolor()
            if line.get_fillstyle() == "none" and marker not in _OPEN:
                symbol += "-open"
                face = line.get_markeredgecolor()
            trace["marker"] = {
                "symbol": symbol,
                "size": size,
                "color": edge if marker in _OPEN or symbol.endswith("-open") else rgba(face, alpha),
                "line": {"color": edge, "width": _px(line.get_markeredgewidth(), self.dpi)},
            }
        return trace

    def _dash(self, style, pattern) -> str:
        if style in ("-", "solid"):
            return "solid"
        if pattern and pattern[1]:
            return ",".join(f"{_px(v, self.dpi):.2f}px" for v in pattern[1])
        return _DASHES.get(style, "solid")

    def _PathCollection(self, collection) -> dict:
        offsets = _to_data(self.ax, collection.get_offset_transform(), collection.get_offsets())
        count = len(offsets)
        paths = collection.get_paths()
        if not paths or not count:
            return None
        symbols = {_symbol(path) for path in paths}
        if len(symbols) > 1:
            raise Unsupported("a scatter of several marker shapes")
        sizes = np.sqrt(np.broadcast_to(collection.get_sizes(), (count,)))
        faces = collection.get_facecolors()
        edges = collection.get_edgecolors()
        widths = collection.get_linewidths()
        alpha = collection.get_alpha()
        marker: dict = {
            # Plotly draws markers of varying sizes at 0.7 opacity unless told otherwise.
            "opacity": 1,
            "symbol": symbols.pop(),
            "size": [_px(s, self.dpi) for s in sizes.tolist()],
            "line": {
                "color": _colours(edges, count),
                "width": _px(widths[0] if len(widths) else 0, self.dpi),
            },
        }
        trace = {
            "type": "scatter",
            "mode": "markers",
            "x": _floats(offsets[:, 0]),
            "y": _floats(offsets[:, 1]),
            "name": self._label(collection),
            "marker": marker,
        }
        values = collection.get_array()
        if (
            values is not None
            and type(collection.norm).__name__ == _PLAIN_NORM
            and np.ma.asarray(values).size == count
            and len(faces) == count
        ):
            # The values with the colormap: exact colours, and a colorbar can refer to it.
            norm = collection.norm
            marker.update(
                {
                    "color": _floats(values),
                    "cmin": float(norm.vmin),
                    "cmax": float(norm.vmax),
                    "colorscale": colorscale(collection.get_cmap()),
                    "showscale": False,
                }
            )
            if alpha is not None:
                marker["opacity"] = alpha
            trace["_colorscale_at"] = "marker"
        else:
            marker["color"] = _colours(faces, count)
        if marker["symbol"].endswith("-open"):
            marker["color"] = marker["line"]["color"]
        return trace

    def _LineCollection(self, collection) -> list[dict]:
        if np.any(np.asarray(collection.get_offsets()) != 0):
            raise Unsupported("a line collection with offsets")
        segments = collection.get_segments()
        colours = collection.get_colors()
        widths = collection.get_linewidths()
        styles = collection.get_linestyles()
        groups: dict[tuple, tuple[list, list]] = {}
        for index, segment in enumerate(segments):
            if len(segment) == 0:
                continue
            points = _to_data(self.ax, collection.get_transform(), segment)
            colour = rgba(colours[index % len(colours)]) if len(colours) else "rgba(0,0,0,0)"
            width = _px(widths[index % len(widths)], self.dpi) if len(widths) else 1.0
            style = styles[index % len(styles)] if styles else (0, None)
            key = (colour, width, self._dash("--" if style[1] else "-", style))
            xs, ys = groups.setdefault(key, ([], []))
            if xs:
                xs.append(None)
                ys.append(None)
            xs.extend(_floats(points[:, 0]))
            ys.extend(_floats(points[:, 1]))
        label = self._label(collection)
        return [
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": ys,
                "name": label,
                "line": {"color": colour, "width": width, "dash": dash},
            }
            for (colour, width, dash), (xs, ys) in groups.items()
        ]

    # ---------------------------------------------------------------- areas

    def _polygons(self, path, transform) -> tuple[list, list]:
        xs: list = []
        ys: list = []
        for polygon in path.to_polygons(transform, closed_only=False):
            points = self.ax.transData.inverted().transform(polygon)
            if xs:
                xs.append(None)
                ys.append(None)
            xs.extend(_floats(points[:, 0]))
            ys.extend(_floats(points[:, 1]))
        return xs, ys

    def _area(self, xs, ys, face, edge, width, fill: bool, label: str) -> dict:
        filled = fill and mcolors.to_rgba(face)[3] > 0
        return {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": ys,
            "fill": "toself" if filled else "none",
            "fillcolor": rgba(face),
            "line": {"color": rgba(edge), "width": _px(width, self.dpi) if width else 0},
            "name": label,
            "hoveron": "fills+points" if filled else "points",
        }

    def _PolyCollection(self, collection) -> list[dict]:
        if np.any(np.asarray(collection.get_offsets()) != 0):
            raise Unsupported("a polygon collection with offsets (hexbin)")
        faces = collection.get_facecolors()
        edges = collection.get_edgecolors()
        widths = collection.get_linewidths()
        traces = []
        for index, path in enumerate(collection.get_paths()):
            xs, ys = self._polygons(path, collection.get_transform())
            traces.append(
                self._area(
                    xs,
                    ys,
                    faces[index % len(faces)] if len(faces) else "none",
                    edges[index % len(edges)] if len(edges) else "none",
                    widths[index % len(widths)] if len(widths) else 0,
                    True,
                    self._label(collection) if index == 0 else "",
                )
            )
        return traces

    _FillBetweenPolyCollection = _PolyCollection

    def _patch(self, patch) -> dict:
        xs, ys = self._polygons(patch.get_path(), patch.get_transform())
        return self._area(
            xs,
            ys,
            patch.get_facecolor(),
            patch.get_edgecolor(),
            patch.get_linewidth(),
            patch.get_fill(),
            self._label(patch),
        )

    def _bars(self, container) -> dict:
        rectangles = container.patches
        horizontal = getattr(container, "orientation", "vertical") == "horizontal"
        starts, lengths, centres, widths = [], [], [], []
        for rect in rectangles:
            x, y, w, h = rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()
            if horizontal:
                starts.append(x)
                lengths.append(w)
                centres.append(y + h / 2)
                widths.append(abs(h))
            else:
                starts.append(y)
                lengths.append(h)
                centres.append(x + w / 2)
                widths.append(abs(w))
        first = rectangles[0] if rectangles else None
        trace = {
            "type": "bar",
            "orientation": "h" if horizontal else "v",
            "x": _floats(lengths if horizontal else centres),
            "y": _floats(centres if horizontal else lengths),
            "base": _floats(starts),
            "width": _floats(widths),
            # hist() labels the first bar of a data set rather than its container
            "name": self._label(container) or (self._label(first) if first else ""),
            "marker": {
                "color": [rgba(r.get_facecolor()) for r in rectangles],
                "line": {
                    "color": [rgba(r.get_edgecolor()) for r in rectangles],
                    "width": _px(first.get_linewidth(), self.dpi) if first else 0,
                },
            },
        }
        return trace

    def _error_bars(self, container, data_artist) -> None:
        trace = self.traces_of.get(id(data_artist))
        if trace is None:
            raise Unsupported("error bars without their data")
        _, caplines, barcols = container.lines
        cap = _px(caplines[0].get_markersize() / 2, self.dpi) if caplines else 0
        if trace["type"] == "bar":
            vertical = trace["orientation"] == "v"
            base = np.array(trace["base"], dtype=float)
            values = base + np.array(trace["y" if vertical else "x"], dtype=float)
        else:
            vertical = None
        kinds = []
        if container.has_xerr:
            kinds.append("x")
        if container.has_yerr:
            kinds.append("y")
        for kind, collection in zip(kinds, barcols, strict=False):
            if vertical is not None:
                centres = values if (kind == "y") == vertical else None
            else:
                centres = np.array(trace[kind], dtype=float)
            if centres is None:
                raise Unsupported("error bars across bars")
            segments = collection.get_segments()
            if len(segments) != len(centres):
                raise Unsupported("error bars on some points only")
            column = 0 if kind == "x" else 1
            low = np.array([min(s[0][column], s[1][column]) for s in segments])
            high = np.array([max(s[0][column], s[1][column]) for s in segments])
            colours = collection.get_colors()
            trace[f"error_{kind}"] = {
                "type": "data",
                "symmetric": False,
                "array": _floats(high - centres),
                "arrayminus": _floats(centres - low),
                "color": rgba(colours[0]) if len(colours) else "black",
                "thickness": _px(collection.get_linewidths()[0], self.dpi),
                "width": cap,
                "visible": True,
            }

    # ---------------------------------------------------------------- images and meshes

    def _AxesImage(self, image) -> dict:
        array = np.ma.asarray(image.get_array())
        if array.ndim not in (2, 3) or not array.size:
            raise Unsupported("an image of unexpected shape")
        rows, cols = array.shape[:2]
        left, right, bottom, top = image.get_extent()
        dx = (right - left) / cols
        if image.origin == "upper":
            dy, y0 = (bottom - top) / rows, top
        else:
            dy, y0 = (top - bottom) / rows, bottom
        x0 = left
        if dx < 0:
            array, x0, dx = array[:, ::-1], right, -dx
        if dy < 0:
            array, y0, dy = array[::-1], y0 + rows * dy, -dy
        placement = {"x0": x0 + dx / 2, "dx": dx, "y0": y0 + dy / 2, "dy": dy}
        smooth = image.get_interpolation() in ("bilinear", "bicubic", "gaussian", "spline16")
        if (
            array.ndim == 2
            and type(image.norm).__name__ == _PLAIN_NORM
            and array.size <= (MAX_HEATMAP_CELLS)
        ):
            norm = image.norm
            trace = {
                "type": "heatmap",
                "z": [_floats(row) for row in array],
                **placement,
                "zmin": float(norm.vmin),
                "zmax": float(norm.vmax),
                "colorscale": colorscale(image.get_cmap()),
                "showscale": False,
                "zsmooth": "best" if smooth else False,
                "hoverongaps": False,
                "_colorscale_at": "",
            }
            if image.get_alpha() is not None:
                trace["opacity"] = image.get_alpha()
            return trace
        pixels = image.to_rgba(array, bytes=True, norm=array.ndim == 2)
        if pixels.shape[-1] == 3:
            pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], 2)
        if image.get_alpha() is not None:
            pixels[..., 3] = (pixels[..., 3] * image.get_alpha()).astype(np.uint8)
        return {
            "type": "image",
            "source": _png_data_uri(pixels),
            **placement,
            "zsmooth": "fast" if smooth else False,
            "hoverinfo": "skip",
        }

    def _QuadMesh(self, mesh) -> dict:
        if mesh._shading == "gouraud" or type(mesh.norm).__name__ != _PLAIN_NORM:
            raise Unsupported("a mesh with gouraud shading or a non-linear norm")
        coordinates = mesh.get_coordinates()
        xs, ys = coordinates[..., 0], coordinates[..., 1]
        if not (np.allclose(xs, xs[:1, :]) and np.allclose(ys, ys[:, :1])):
            raise Unsupported("a mesh that is not rectilinear")
        x_edges = _to_data(self.ax, mesh.get_transform(), np.c_[xs[0], ys[0]])[:, 0]
        y_edges = _to_data(self.ax, mesh.get_transform(), np.c_[xs[:, 0], ys[:, 0]])[:, 1]
        values = np.ma.asarray(mesh.get_array()).reshape(len(y_edges) - 1, len(x_edges) - 1)
        norm = mesh.norm
        return {
            "type": "heatmap",
            "z": [_floats(row) for row in values],
            "x": _floats(x_edges),
            "y": _floats(y_edges),
            "zmin": float(norm.vmin),
            "zmax": float(norm.vmax),
            "colorscale": colorscale(mesh.get_cmap()),
            "showscale": False,
            "zsmooth": False,
            "hoverongaps": False,
            "_colorscale_at": "",
        }


def _colours(array, count: int):
    if len(array) == 0:
        return "rgba(0,0,0,0)"
    if len(array) == 1:
        return rgba(array[0])
    return [rgba(array[i % len(array)]) for i in range(count)]


def _png_data_uri(pixels: np.ndarray) -> str:
    from matplotlib import image as mimage

    buffer = io.BytesIO()
    mimage.imsave(buffer, pixels, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
