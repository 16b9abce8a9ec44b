// Draws every `.plot[data-figure]` from its json_script payload with Plotly, opens a
// step's task when a DAG node is clicked, and keeps a live pipeline run's DAG current.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false };
  var RUN_POLL_MS = 3000;

  function readFigure(id) {
    var script = document.getElementById(id);
    return script ? JSON.parse(script.textContent) : { data: [], layout: {} };
  }

  function openTaskOnClick(element) {
    var template = element.dataset.taskUrl;
    if (!template) return;
    element.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      var taskId = point && point.customdata;
      if (typeof taskId === "string" && /^[0-9a-f]{32}$/.test(taskId)) {
        window.location.href = template.replace("__id__", taskId);
      }
    });
  }

  function draw(element) {
    var figure = readFigure(element.dataset.figure);
    var layout = Object.assign({}, figure.layout || {});
    return Plotly.newPlot(element, figure.data || [], layout, CONFIG).then(function () {
      element.dataset.drawn = "1";
      openTaskOnClick(element);
    });
  }

  // A run's DAG changes as its steps move; redraw only when the figure really changed,
  // because a redraw drops the hover box the user may be reading.
  function followRun(element, url, onState) {
    var version = null;
    var dashboard = window.pipelinesDashboard;
    dashboard.every(function () { return RUN_POLL_MS; }, function () {
      return dashboard.getJson(url).then(function (state) {
        if (version !== null && state.version !== version) {
          Plotly.react(element, state.figure.data, state.figure.layout, CONFIG);
        }
        version = state.version;
        if (onState) onState(state);
        return state.terminal;  // true stops the polling
      });
    });
  }

  // A running task's Plots tab: figures stored since the page's seq are drawn in place
  // (the same title and series, a later iteration) or added, without a reload.
  function followPlots(container) {
    var dashboard = window.pipelinesDashboard;
    var seq = parseInt(container.dataset.seq, 10) || 0;
    var counter = 0;
    function sectionFor(plot) {
      var sections = container.querySelectorAll("section.chart");
      for (var i = 0; i < sections.length; i++) {
        if (sections[i].dataset.title === plot.title && sections[i].dataset.series === plot.series) {
          return sections[i];
        }
      }
      var empty = container.querySelector("[data-empty]");
      if (empty) empty.remove();
      var section = document.createElement("section");
      section.className = "panel chart";
      section.dataset.title = plot.title;
      section.dataset.series = plot.series;
      section.dataset.iteration = "-Infinity";
      var element = document.createElement("div");
      element.className = "plot";
      element.id = "live-plot-" + (counter += 1);
      var caption = document.createElement("p");
      caption.className = "muted small";
      caption.dataset.caption = "";
      section.appendChild(element);
      section.appendChild(caption);
      container.appendChild(section);
      return section;
    }
    function show(plot) {
      var section = sectionFor(plot);
      if (plot.iteration < parseFloat(section.dataset.iteration)) return Promise.resolve();
      section.dataset.iteration = plot.iteration;
      section.querySelector("[data-caption]").textContent =
        plot.iteration ? "iteration " + plot.iteration : "";
      var figure = plot.figure || {};
      var layout = Object.assign({ autosize: true }, figure.layout || {});
      if (!layout.title) layout.title = { text: plot.series ? plot.title + " / " + plot.series : plot.title };
      var element = section.querySelector(".plot");
      return Plotly.react(element, figure.data || [], layout, CONFIG).then(function () {
        element.dataset.drawn = "1";
      });
    }
    dashboard.every(function () { return RUN_POLL_MS; }, function () {
      return dashboard.getJson(container.dataset.plotsSinceUrl + "?seq=" + seq).then(function (payload) {
        seq = payload.seq;
        return Promise.all(payload.plots.map(show));
      });
    });
  }

  function setUpRunPage() {
    var head = document.getElementById("run-head");
    var dag = document.getElementById("pipeline-dag");
    if (!head || !dag || head.dataset.terminal === "1") return;
    var dashboard = window.pipelinesDashboard;
    followRun(dag, head.dataset.runStateUrl, function (state) {
      document.getElementById("run-status").innerHTML = dashboard.pill(state.status, state.label);
      document.getElementById("run-progress").textContent =
        state.progress.done + "/" + state.progress.total + " steps";
      document.getElementById("run-progress-bar").style.width = state.progress.percent + "%";
      document.getElementById("pipeline-nodes-wrap").innerHTML = state.nodes_html;
      dashboard.syncSelection();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Plotly === "undefined") {
      document.querySelectorAll(".plot[data-figure]").forEach(function (element) {
        element.textContent = "Plotly.js did not load, so this chart cannot be drawn.";
      });
      return;
    }
    var drawing = Array.prototype.map.call(document.querySelectorAll(".plot[data-figure]"), draw);
    Promise.all(drawing).then(function () {
      setUpRunPage();
      document.querySelectorAll(".plot[data-live-url]").forEach(function (element) {
        followRun(element, element.dataset.liveUrl);
      });
      document.querySelectorAll("[data-plots-since-url]").forEach(followPlots);
    });
  });
})();
