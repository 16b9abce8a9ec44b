// Scalar charts: one chart per title, one line per series (and per task when comparing),
// smoothing, x by iteration / wall time / relative time, log scale, series shown or hidden,
// single values as a table, and, while a task runs, the points it reports since the last
// refresh appended without a reload.
//
// The viewer is a `[data-scalars]` element whose `[data-source]` children name each task's
// charts and feed URLs. The first request starts as soon as this script runs (it is loaded
// `async`), in parallel with Plotly.js, so the charts wait for the slower of the two only.
(function () {
  "use strict";

  var LIVE_POLL_MS = 2000;
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  // Appended raw points past this per line: redraw from the server's buckets instead.
  var MAX_APPENDED = 4096;
  var CONFIG = { responsive: true, displaylogo: false };
  var SEP = "\u0000";

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(url + ": " + response.status);
        return response.json();
      });
  }

  // Requests started before the page is parsed: keyed by URL, taken once.
  var early = {};
  var me = document.currentScript;
  if (me && me.dataset.prefetch) {
    me.dataset.prefetch.split(" ").forEach(function (url) { early[url] = getJson(url); });
  }
  function load(url) {
    var pending = early[url];
    delete early[url];
    return pending || getJson(url);
  }

  // TensorBoard's (and ClearML's) smoothing: an exponential moving average, debiased so
  // the first points are not pulled towards zero. Gaps stay gaps.
  function smooth(ys, weight) {
    if (!weight) return ys;
    var out = new Array(ys.length);
    var last = 0;
    var count = 0;
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (y === null || !isFinite(y)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * y;
      count += 1;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function Viewer(root) {
    this.root = root;
    this.sources = Array.prototype.map.call(root.querySelectorAll("[data-source]"), function (el, i) {
      return {
        index: i,
        label: el.dataset.label || "",
        chartsUrl: el.dataset.chartsUrl,
        sinceUrl: el.dataset.sinceUrl,
        live: el.dataset.live === "1",
        seq: 0,
        started: null,
        lines: {},      // "title\0series" -> {title, series, x, y, t, appended}
        single: [],
      };
    });
    this.compare = this.sources.length > 1;
    this.charts = {};   // title -> {panel, plot}
    this.hidden = {};   // "title\0series" hidden in that chart; "\0series" hidden everywhere
    this.settings = { smoothing: 0, xaxis: "iteration", log: false, filter: "" };
    this.container = root.querySelector("[data-charts]");
  }

  Viewer.prototype.start = function () {
    var self = this;
    this.bindTools();
    return Promise.all(this.sources.map(function (source) { return self.fetchCharts(source); }))
      .then(function () { return self.renderAll(); })
      .then(function () {
        self.root.dataset.drawn = "1";
        // When the first charts were on screen, for bench/bench_dashboard.py.
        self.root.dataset.drawnAt = String(Math.round(performance.now()));
        if (self.sources.some(function (s) { return s.live; })) self.follow();
      })
      .catch(function (error) {
        console.warn(error);
        self.container.innerHTML = '<p class="plugin-error">The charts could not be loaded.</p>';
      });
  };

  Viewer.prototype.fetchCharts = function (source) {
    return load(source.chartsUrl).then(function (payload) {
      source.seq = payload.seq;
      source.started = payload.started ? Date.parse(payload.started) : null;
      source.single = payload.single_values || [];
      source.lines = {};
      payload.series.forEach(function (line) {
        line.appended = 0;
        source.lines[line.title + SEP + line.series] = line;
      });
    });
  };

  // Append what each source stored since its seq; a point at or before a line's last
  // iteration was drawn already (or is a rewrite, shown on the next full draw).
  Viewer.prototype.refresh = function (source) {
    var self = this;
    return getJson(source.sinceUrl + "?seq=" + source.seq).then(function (payload) {
      if (payload.reset) return self.fetchCharts(source).then(function () { return self.renderAll(); });
      source.seq = payload.seq;
      var touched = {};
      var redraw = false;
      payload.points.forEach(function (fresh) {
        var key = fresh.title + SEP + fresh.series;
        var line = source.lines[key];
        if (!line) {
          line = source.lines[key] = { title: fresh.title, series: fresh.series, x: [], y: [], t: [], appended: 0 };
        }
        var lastX = line.x.length ? line.x[line.x.length - 1] : -Infinity;
        for (var i = 0; i < fresh.x.length; i++) {
          if (fresh.x[i] <= lastX) continue;
          line.x.push(fresh.x[i]);
          line.y.push(fresh.y[i]);
          line.t.push(fresh.t[i]);
          line.appended += 1;
          lastX = fresh.x[i];
        }
        if (line.appended > MAX_APPENDED) redraw = true;
        touched[fresh.title] = true;
      });
      if (redraw) return self.fetchCharts(source).then(function () { return self.renderAll(); });
      return Promise.all(Object.keys(touched).map(function (title) { return self.renderChart(title); }))
        .then(function () { self.renderPicker(); });
    });
  };

  Viewer.prototype.follow = function () {
    var self = this;
    var dashboard = window.pipelinesDashboard;
    var every = dashboard ? dashboard.every : function (delay, task) { setInterval(task, delay()); };
    every(function () { return LIVE_POLL_MS; }, function () {
      return Promise.all(self.sources.filter(function (s) { return s.live; })
        .map(function (source) { return self.refresh(source); }));
    });
  };

  Viewer.prototype.titles = function () {
    var titles = {};
    this.sources.forEach(function (source) {
      Object.keys(source.lines).forEach(function (key) { titles[source.lines[key].title] = true; });
    });
    return Object.keys(titles).sort();
  };

  Viewer.prototype.seriesNames = function () {
    var names = {};
    this.sources.forEach(function (source) {
      Object.keys(source.lines).forEach(function (key) { names[source.lines[key].series] = true; });
    });
    return Object.keys(names).sort();
  };

  Viewer.prototype.seriesOf = function (title) {
    var names = {};
    this.sources.forEach(function (source) {
      Object.keys(source.lines).forEach(function (key) {
        if (source.lines[key].title === title) names[source.lines[key].series] = true;
      });
    });
    return Object.keys(names);
  };

  Viewer.prototype.isHidden = function (title, series) {
    return Boolean(this.hidden[title + SEP + series] || this.hidden[SEP + series]);
  };

  Viewer.prototype.xOf = function (source, line) {
    var mode = this.settings.xaxis;
    if (mode === "iteration") return line.x;
    if (mode === "wall") return line.t;
    var origin = source.started;
    if (origin === null) {
      origin = Infinity;
      Object.keys(source.lines).forEach(function (key) {
        var t = source.lines[key].t;
        if (t.length && t[0] < origin) origin = t[0];
      });
    }
    return line.t.map(function (t) { return (t - origin) / 1000; });
  };

  Viewer.prototype.traces = function (title) {
    var self = this;
    var traces = [];
    var colour = 0;
    this.sources.forEach(function (source) {
      Object.keys(source.lines).sort().forEach(function (key) {
        var line = source.lines[key];
        if (line.title !== title) return;
        var name = self.compare ? line.series + " · " + source.label : line.series;
        var color = PALETTE[colour++ % PALETTE.length];
        var visible = self.isHidden(title, line.series) ? "legendonly" : true;
        var x = self.xOf(source, line);
        var mode = line.x.length < 50 ? "lines+markers" : "lines";
        var group = source.index + SEP + line.series;
        if (self.settings.smoothing > 0) {
          traces.push({ type: "scatter", mode: "lines", x: x, y: line.y, name: name,
            legendgroup: group, showlegend: false, hoverinfo: "skip", visible: visible,
            line: { color: color, width: 1 }, opacity: 0.25 });
        }
        traces.push({ type: "scatter", mode: mode, x: x, y: smooth(line.y, self.settings.smoothing),
          name: name, legendgroup: group, visible: visible, line: { color: color, width: 1.5 },
          marker: { color: color, size: 4 }, meta: line.series });
      });
    });
    return traces;
  };

  Viewer.prototype.layout = function (title) {
    var axis = this.settings.xaxis;
    return {
      title: { text: title },
      xaxis: {
        title: { text: { iteration: "iteration", wall: "wall time", relative: "seconds since start" }[axis] },
        type: axis === "wall" ? "date" : "linear",
      },
      yaxis: { type: this.settings.log ? "log" : "linear" },
      margin: { l: 55, r: 20, t: 40, b: 40 },
      height: 340,
      showlegend: true,
      legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" },
      // Zoom and pan survive live updates; a new axis mode starts afresh.
      uirevision: axis + (this.settings.log ? ":log" : ""),
    };
  };

  Viewer.prototype.panelFor = function (title) {
    var self = this;
    var chart = this.charts[title];
    if (chart) return chart;
    var panel = document.createElement("section");
    panel.className = "panel chart scalar-chart";
    panel.dataset.title = title;
    var plot = document.createElement("div");
    plot.className = "plot";
    panel.appendChild(plot);
    // Charts stay in title order as new titles appear.
    var after = null;
    Object.keys(this.charts).forEach(function (other) {
      if (other > title && (after === null || other < after)) after = other;
    });
    this.container.insertBefore(panel, after === null ? null : this.charts[after].panel);
    chart = this.charts[title] = { panel: panel, plot: plot, bound: false };
    chart.bind = function () {
      if (chart.bound) return;
      chart.bound = true;
      plot.on("plotly_legendclick", function (event) {
        var series = event.data[event.curveNumber].meta || event.data[event.curveNumber].name;
        var key = title + SEP + series;
        self.hidden[key] = !self.isHidden(title, series);
        if (!self.hidden[key]) delete self.hidden[SEP + series];
        self.renderChart(title);
        return false;
      });
      plot.on("plotly_legenddoubleclick", function () { return false; });
    };
    return chart;
  };

  Viewer.prototype.renderChart = function (title) {
    var chart = this.panelFor(title);
    var needle = this.settings.filter;
    var match = !needle || title.toLowerCase().indexOf(needle) >= 0 ||
      this.seriesOf(title).some(function (name) { return name.toLowerCase().indexOf(needle) >= 0; });
    chart.panel.hidden = !match;
    if (typeof Plotly === "undefined") {
      chart.plot.textContent = "Plotly.js did not load, so this chart cannot be drawn.";
      return Promise.resolve();
    }
    return Plotly.react(chart.plot, this.traces(title), this.layout(title), CONFIG).then(function () {
      chart.bind();
      chart.plot.dataset.drawn = "1";
    });
  };

  Viewer.prototype.renderAll = function () {
    var self = this;
    var titles = this.titles();
    var empty = this.root.querySelector("[data-empty]");
    if (empty) empty.hidden = titles.length > 0 || this.sources.some(function (s) { return s.single.length; });
    var loading = this.root.querySelector("[data-loading]");
    if (loading) loading.remove();
    this.renderSummary();
    this.renderPicker();
    return Promise.all(titles.map(function (title) { return self.renderChart(title); }));
  };

  Viewer.prototype.renderSummary = function () {
    var box = this.root.querySelector("[data-summary]");
    if (!box) return;
    var rows = {};
    var self = this;
    this.sources.forEach(function (source) {
      source.single.forEach(function (item) {
        (rows[item.name] = rows[item.name] || {})[source.index] = item.value;
      });
    });
    var names = Object.keys(rows).sort();
    box.hidden = names.length === 0;
    if (!names.length) return;
    var head = "<tr><th>Name</th>" + this.sources.map(function (source) {
      return "<th>" + escapeHtml(self.compare ? source.label : "Value") + "</th>";
    }).join("") + "</tr>";
    var body = names.map(function (name) {
      return '<tr data-single="' + escapeHtml(name) + '"><td class="mono">' + escapeHtml(name) + "</td>" +
        self.sources.map(function (source) {
          var value = rows[name][source.index];
          return '<td class="mono">' + (value === undefined ? "–" : escapeHtml(value === null ? "NaN" : value)) + "</td>";
        }).join("") + "</tr>";
    }).join("");
    box.querySelector("table").innerHTML = "<thead>" + head + "</thead><tbody>" + body + "</tbody>";
  };

  Viewer.prototype.renderPicker = function () {
    var list = this.root.querySelector("[data-series-list]");
    if (!list) return;
    var self = this;
    var names = this.seriesNames();
    if (list.dataset.names === names.join(SEP)) return;
    list.dataset.names = names.join(SEP);
    list.innerHTML = names.map(function (name) {
      return '<label class="check small"><input type="checkbox" data-series="' + escapeHtml(name) + '"' +
        (self.hidden[SEP + name] ? "" : " checked") + "> " + escapeHtml(name) + "</label>";
    }).join("");
  };

  Viewer.prototype.bindTools = function () {
    var self = this;
    var root = this.root;
    function rerender() { self.renderAll(); }
    var smoothing = root.querySelector("[data-smoothing]");
    if (smoothing) {
      smoothing.addEventListener("input", function () {
        self.settings.smoothing = Math.min(0.999, Math.max(0, parseFloat(smoothing.value) || 0));
        var shown = root.querySelector("[data-smoothing-value]");
        if (shown) shown.textContent = self.settings.smoothing.toFixed(2);
        rerender();
      });
    }
    var xaxis = root.querySelector("[data-xaxis]");
    if (xaxis) xaxis.addEventListener("change", function () { self.settings.xaxis = xaxis.value; rerender(); });
    var log = root.querySelector("[data-log]");
    if (log) log.addEventListener("change", function () { self.settings.log = log.checked; rerender(); });
    var filter = root.querySelector("[data-filter]");
    if (filter) {
      filter.addEventListener("input", function () {
        self.settings.filter = filter.value.trim().toLowerCase();
        rerender();
      });
    }
    var list = root.querySelector("[data-series-list]");
    if (list) {
      list.addEventListener("change", function (event) {
        var name = event.target.dataset.series;
        if (name === undefined) return;
        if (event.target.checked) {
          delete self.hidden[SEP + name];
          Object.keys(self.hidden).forEach(function (key) {
            if (key.split(SEP)[1] === name) delete self.hidden[key];
          });
        } else {
          self.hidden[SEP + name] = true;
        }
        rerender();
      });
    }
    root.querySelectorAll("[data-series-all]").forEach(function (button) {
      button.addEventListener("click", function () {
        var show = button.dataset.seriesAll === "show";
        self.hidden = {};
        if (!show) self.seriesNames().forEach(function (name) { self.hidden[SEP + name] = true; });
        list.dataset.names = "";
        rerender();
      });
    });
  };

  function startAll() {
    document.querySelectorAll("[data-scalars]").forEach(function (root) {
      var viewer = new Viewer(root);
      root.scalarViewer = viewer;
      viewer.start();
    });
  }

  // Loaded async, this may run before the page's deferred scripts (Plotly.js) have: start
  // once they have, i.e. at DOMContentLoaded, or now if that has passed.
  var started = false;
  function startOnce() {
    if (started) return;
    started = true;
    startAll();
  }
  if (typeof Plotly !== "undefined" || document.readyState === "complete") {
    startOnce();
  } else {
    document.addEventListener("DOMContentLoaded", startOnce);
    window.addEventListener("load", startOnce);
  }
  window.pipelinesScalars = { smooth: smooth, Viewer: Viewer };
})();
