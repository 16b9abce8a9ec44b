// Draws every `.plot[data-figure]` from its json_script payload with Plotly, opens a
// step (its panel on the run page, else its task) when a DAG node is clicked, and keeps a
// live pipeline run's DAG, timeline, progress and open step panel current.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false };
  var RUN_POLL_MS = 3000;

  function readFigure(id) {
    var script = document.getElementById(id);
    return script ? JSON.parse(script.textContent) : { data: [], layout: {} };
  }

  // A DAG or timeline point's customdata is [step name, task id] (older stored figures:
  // the task id alone). On the run page a click opens the step's panel; elsewhere, its task.
  function clickedIds(point) {
    var data = point && point.customdata;
    if (Array.isArray(data)) return { step: data[0], task: data[1] };
    return { step: null, task: data };
  }

  function openTaskOnClick(element) {
    var template = element.dataset.taskUrl;
    if (!template && !element.dataset.stepUrl) return;
    element.on("plotly_click", function (event) {
      var ids = clickedIds(event.points && event.points[0]);
      if (element.dataset.stepUrl && typeof ids.step === "string") {
        openStep(ids.step);
        return;
      }
      if (template && typeof ids.task === "string" && /^[0-9a-f]{32}$/.test(ids.task)) {
        window.location.href = template.replace("__id__", ids.task);
      }
    });
  }

  // ------------------------------------------------------------ the run page's step panel
  var openStepName = null;

  function panelUrl(name) {
    var dag = document.getElementById("pipeline-dag");
    return dag.dataset.stepUrl + "?name=" + encodeURIComponent(name);
  }

  function markStep(name) {
    document.querySelectorAll("#pipeline-nodes tr[data-step]").forEach(function (row) {
      row.classList.toggle("selected-step", row.dataset.step === name);
    });
  }

  function openStep(name) {
    var panel = document.getElementById("step-panel");
    if (!panel || !document.getElementById("pipeline-dag")) return Promise.resolve();
    openStepName = name;
    panel.setAttribute("aria-busy", "true");
    return fetch(panelUrl(name), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("step " + name + ": " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (openStepName !== name) return;  // another step was clicked meanwhile
        var first = panel.dataset.step !== name;
        panel.innerHTML = html;
        panel.dataset.step = name;
        markStep(name);
        // On a narrow screen the panel sits below the graph: bring it into view once.
        if (first && window.matchMedia("(max-width: 900px)").matches) {
          panel.scrollIntoView({ block: "start", behavior: "smooth" });
        }
      })
      .catch(function (error) {
        if (openStepName !== name) return;
        panel.textContent = "Could not load the step " + name + " (" + error.message + ").";
      })
      .then(function () { panel.removeAttribute("aria-busy"); });
  }

  function closeStep() {
    var panel = document.getElementById("step-panel");
    openStepName = null;
    delete panel.dataset.step;
    panel.innerHTML = '<p class="muted" data-panel-empty>Click a step to see its details here.</p>';
    markStep(null);
  }

  function setUpStepPanel() {
    var panel = document.getElementById("step-panel");
    if (!panel) return;
    document.addEventListener("click", function (event) {
      var opener = event.target.closest("[data-open-step]");
      if (opener) {
        openStep(opener.dataset.openStep);
        return;
      }
      if (event.target.closest("[data-close-panel]")) closeStep();
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
  // because a redraw drops the hover box the user may be reading. The page says which
  // version it drew (`initialVersion`), so a change made before the first poll is drawn by
  // that poll; without one (the Pipeline tab) the first poll draws whatever it gets.
  function followRun(element, url, onState, initialVersion) {
    var version = initialVersion || null;
    var dashboard = window.pipelinesDashboard;
    dashboard.every(function () { return RUN_POLL_MS; }, function () {
      return dashboard.getJson(url).then(function (state) {
        var drawing = [];
        if (state.version !== version) {
          drawing.push(Plotly.react(element, state.figure.data, state.figure.layout, CONFIG));
          var timeline = document.getElementById("pipeline-timeline");
          if (timeline && state.timeline && timeline.dataset.drawn === "1") {
            drawing.push(Plotly.react(timeline, state.timeline.data, state.timeline.layout, CONFIG));
          } else if (timeline && state.timeline) {
            // Not in view yet: its first draw, when it comes into view, takes this figure.
            document.getElementById(timeline.dataset.figure).textContent =
              JSON.stringify(state.timeline);
          }
        }
        version = state.version;
        return Promise.all(drawing).then(function () {
          element.dataset.version = version;
          if (onState) onState(state);
          return state.terminal;  // true stops the polling
        });
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
    if (!head || !dag) return;
    setUpStepPanel();
    if (head.dataset.terminal === "1") return;
    var dashboard = window.pipelinesDashboard;
    followRun(dag, head.dataset.runStateUrl, function (state) {
      document.getElementById("run-status").innerHTML = dashboard.pill(state.status, state.label);
      document.getElementById("run-progress-wrap").innerHTML = state.progress_html;
      document.getElementById("run-times").innerHTML = state.times_html;
      document.getElementById("pipeline-nodes-wrap").innerHTML = state.nodes_html;
      head.dataset.terminal = state.terminal ? "1" : "0";
      markStep(openStepName);
      dashboard.syncSelection();
      if (openStepName !== null) return openStep(openStepName);  // its state moved too
    }, head.dataset.version);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof Plotly === "undefined") {
      document.querySelectorAll(".plot[data-figure]").forEach(function (element) {
        element.textContent = "Plotly.js did not load, so this chart cannot be drawn.";
      });
      return;
    }
    // A `data-lazy` chart (the run page's timeline, below the graph) is drawn when it comes
    // into view, so a large run's graph is on screen without waiting for it.
    var now = [];
    document.querySelectorAll(".plot[data-figure]").forEach(function (element) {
      if (element.dataset.lazy === undefined || typeof IntersectionObserver === "undefined") {
        now.push(draw(element));
        return;
      }
      var observer = new IntersectionObserver(function (entries) {
        if (!entries.some(function (entry) { return entry.isIntersecting; })) return;
        observer.disconnect();
        if (element.dataset.drawn !== "1") draw(element);
      });
      observer.observe(element);
    });
    Promise.all(now).then(function () {
      setUpRunPage();
      document.querySelectorAll(".plot[data-live-url]").forEach(function (element) {
        followRun(element, element.dataset.liveUrl);
      });
      document.querySelectorAll("[data-plots-since-url]").forEach(followPlots);
    });
  });
})();
