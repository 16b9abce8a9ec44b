// The dashboard's small amount of behaviour: dialogs, confirmations, live status and the
// console tail. Plain JS on purpose: every page works without it, this only adds comfort.
(function () {
  "use strict";

  var ACTIVE_POLL_MS = 3000;
  var IDLE_POLL_MS = 15000;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function pill(status, label) {
    return '<span class="pill pill-' + escapeHtml(status) + '" data-status="' +
      escapeHtml(status) + '">' + escapeHtml(label) + "</span>";
  }

  function plural(count, unit) {
    return count + " " + unit + (count === 1 ? "" : "s");
  }

  // The same words as the `ago` template filter: "just now", "1 minute ago", "3 hours ago".
  function ago(iso) {
    var seconds = Math.floor(Math.max(0, (Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 5) return "just now";
    if (seconds < 60) return plural(seconds, "second") + " ago";
    if (seconds < 3600) return plural(Math.floor(seconds / 60), "minute") + " ago";
    if (seconds < 86400) return plural(Math.floor(seconds / 3600), "hour") + " ago";
    return plural(Math.floor(seconds / 86400), "day") + " ago";
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(url + ": " + response.status);
        return response.json();
      });
  }

  // Polls `task` every `delay()` ms while the page is shown; errors only slow it down.
  function every(delay, task) {
    function tick() {
      if (document.hidden) return setTimeout(tick, delay());
      Promise.resolve()
        .then(task)
        .catch(function (error) { console.warn(error); })
        .then(function (stop) { if (stop !== true) setTimeout(tick, delay()); });
    }
    setTimeout(tick, delay());
  }

  // ------------------------------------------------------------ dialogs and confirmations

  function setUpDialogs() {
    document.querySelectorAll("[data-dialog]").forEach(function (button) {
      button.addEventListener("click", function () {
        var dialog = document.getElementById(button.dataset.dialog);
        if (dialog && !button.disabled) dialog.showModal();
      });
    });
    document.querySelectorAll("dialog [data-close]").forEach(function (button) {
      button.addEventListener("click", function () { button.closest("dialog").close(); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.confirmed === "1") return;
        event.preventDefault();
        confirmDialog(form.dataset.confirm, function () {
          form.dataset.confirmed = "1";
          form.submit();
        });
      });
    });
    document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      input.addEventListener("change", function () { input.form.submit(); });
    });
  }

  function confirmDialog(text, onConfirm) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "confirm-dialog";
      dialog.innerHTML = '<form method="dialog"><p class="confirm-text"></p>' +
        '<div class="dialog-buttons"><button value="cancel">Cancel</button>' +
        '<button value="ok" class="danger">Confirm</button></div></form>';
      document.body.appendChild(dialog);
    }
    dialog.querySelector(".confirm-text").textContent = text;
    dialog.onclose = function () { if (dialog.returnValue === "ok") onConfirm(); };
    dialog.returnValue = "";
    dialog.showModal();
  }

  // ------------------------------------------------------------ live task status

  function userIsBusy() {
    if (document.querySelector("dialog[open]")) return true;
    var focused = document.activeElement;
    return focused && /^(INPUT|TEXTAREA|SELECT)$/.test(focused.tagName);
  }

  function setUpTaskStatus() {
    var head = document.querySelector("[data-task-status-url]");
    if (!head) return;
    var shown = head.dataset.status;
    var active = shown === "queued" || shown === "in_progress";
    every(function () { return active ? ACTIVE_POLL_MS : IDLE_POLL_MS; }, function () {
      return getJson(head.dataset.taskStatusUrl).then(function (state) {
        active = state.active;
        document.getElementById("task-status").innerHTML = pill(state.status, state.label);
        if (state.status === shown) return;
        // The buttons and tabs depend on the status: show the new state unless the
        // user is in the middle of something, then say so instead.
        if (!userIsBusy()) return window.location.reload();
        var note = document.getElementById("status-changed");
        if (!note) {
          note = document.createElement("p");
          note.id = "status-changed";
          note.className = "message message-info";
          note.innerHTML = 'The status changed. <a href="">Reload</a> to see it.';
          head.appendChild(note);
        }
      });
    });
  }

  function setUpTableStatus() {
    var table = document.querySelector("table[data-live-status]");
    if (!table) return;
    var rows = table.querySelectorAll("tr[data-task-id]");
    if (!rows.length) return;
    var ids = Array.prototype.map.call(rows, function (row) { return row.dataset.taskId; });
    var url = table.dataset.liveStatus + "?ids=" + encodeURIComponent(ids.join(","));
    every(function () { return ACTIVE_POLL_MS * 2; }, function () {
      return getJson(url).then(function (payload) {
        rows.forEach(function (row) {
          var state = payload.tasks[row.dataset.taskId];
          if (!state) return;
          var cell = row.querySelector('[data-cell="status"]');
          var current = cell.querySelector("[data-status]");
          if (!current || current.dataset.status !== state.status) {
            cell.innerHTML = pill(state.status, state.label);
          }
          var updated = row.querySelector('[data-cell="updated"]');
          if (updated) updated.textContent = ago(state.last_update);
        });
      });
    });
  }

  // ------------------------------------------------------------ console tail

  function setUpConsole() {
    var box = document.getElementById("console");
    if (!box) return;
    var since = parseInt(box.dataset.since, 10);
    var active = true;
    var follow = document.getElementById("console-follow");
    var placeholder = box.querySelector("[data-placeholder]");

    var first = null;  // the seq of the earliest line shown
    var earlier = document.getElementById("console-earlier");

    function render(lines) {
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) {
        var span = document.createElement("span");
        span.className = "line line-" + line.stream;
        span.dataset.seq = line.seq;
        span.textContent = line.text.replace(/\n$/, "") + "\n";
        fragment.appendChild(span);
      });
      return fragment;
    }

    function append(lines) {
      if (!lines.length) return;
      if (placeholder) { placeholder.remove(); placeholder = null; }
      if (first === null) first = lines[0].seq;
      box.appendChild(render(lines));
      if (!follow || follow.checked) box.scrollTop = box.scrollHeight;
    }

    // Lines before the tail the page opened with, a batch per click, the view kept still.
    if (earlier) {
      earlier.addEventListener("click", function () {
        if (first === null) return;
        earlier.disabled = true;
        getJson(box.dataset.consoleUrl + "?before=" + first).then(function (payload) {
          if (payload.lines.length) {
            var height = box.scrollHeight;
            box.insertBefore(render(payload.lines), box.firstChild);
            box.scrollTop += box.scrollHeight - height;
            first = payload.first;
          }
          earlier.hidden = !payload.more;
          var skipped = document.getElementById("console-skipped");
          if (skipped && !payload.more) skipped.hidden = true;
        }).catch(function (error) { console.warn(error); })
          .then(function () { earlier.disabled = false; });
      });
    }

    var search = document.getElementById("console-search");
    var matches = document.getElementById("console-matches");
    if (search && matches) {
      search.addEventListener("submit", function (event) {
        event.preventDefault();
        var needle = search.elements.q.value;
        if (!needle) return;
        getJson(search.dataset.searchUrl + "?q=" + encodeURIComponent(needle)).then(function (payload) {
          matches.hidden = false;
          matches.innerHTML = "";
          var head = document.createElement("p");
          head.className = "small muted";
          head.textContent = payload.lines.length
            ? payload.lines.length + (payload.more ? "+" : "") + " matching line" +
              (payload.lines.length === 1 ? "" : "s") + " for “" + needle + "”"
            : "No line contains “" + needle + "”.";
          matches.appendChild(head);
          var list = document.createElement("pre");
          list.className = "console console-hits";
          var lower = needle.toLowerCase();
          payload.lines.forEach(function (line) {
            var row = document.createElement("span");
            row.className = "line line-" + line.stream;
            row.dataset.seq = line.seq;
            var number = document.createElement("span");
            number.className = "muted";
            number.textContent = "#" + (line.seq + 1) + "  ";
            row.appendChild(number);
            var text = line.text.replace(/\n$/, "");
            var at = 0;
            var hit;
            while ((hit = text.toLowerCase().indexOf(lower, at)) >= 0) {
              row.appendChild(document.createTextNode(text.slice(at, hit)));
              var mark = document.createElement("mark");
              mark.textContent = text.slice(hit, hit + needle.length);
              row.appendChild(mark);
              at = hit + needle.length;
            }
            row.appendChild(document.createTextNode(text.slice(at) + "\n"));
            list.appendChild(row);
          });
          if (payload.lines.length) matches.appendChild(list);
        }).catch(function (error) { console.warn(error); });
      });
    }

    function fetchMore() {
      return getJson(box.dataset.consoleUrl + "?since=" + since).then(function (payload) {
        append(payload.lines);
        since = payload.next;
        active = payload.status.active;
        if (placeholder && !payload.more) placeholder.textContent = "No output yet.";
        if (payload.more) return fetchMore();
      });
    }

    // Polling starts once the first load is done, so two requests never share a `since`.
    fetchMore()
      .catch(function (error) { console.warn(error); })
      .then(function () { every(function () { return active ? 2000 : IDLE_POLL_MS; }, fetchMore); });
  }

  // ------------------------------------------------------------ live debug samples

  // A running task's debug samples: new ones join their title's group, newest first, and
  // an image reported again at the same iteration is fetched again.
  function setUpSamples() {
    var box = document.querySelector("[data-samples-since-url]");
    if (!box) return;
    var seq = parseInt(box.dataset.seq, 10) || 0;
    var template = box.dataset.sampleUrl;  // ends in /0/
    function urlOf(sample) { return template.replace(/0\/$/, sample.id + "/"); }
    function groupFor(title) {
      var groups = box.querySelectorAll("[data-sample-title]");
      for (var i = 0; i < groups.length; i++) {
        if (groups[i].dataset.sampleTitle === title) return groups[i].querySelector(".samples");
      }
      var empty = box.querySelector("[data-empty]");
      if (empty) empty.remove();
      var section = document.createElement("section");
      section.className = "panel";
      section.dataset.sampleTitle = title;
      section.innerHTML = "<h3></h3><div class=\"samples\"></div>";
      section.querySelector("h3").textContent = title;
      box.appendChild(section);
      return section.querySelector(".samples");
    }
    function show(sample, version) {
      var group = groupFor(sample.title);
      var figures = group.querySelectorAll("figure.sample");
      var figure = null;
      for (var i = 0; i < figures.length; i++) {
        if (figures[i].dataset.series === sample.series &&
            figures[i].dataset.iteration === String(sample.iteration)) figure = figures[i];
      }
      if (!figure) {
        figure = document.createElement("figure");
        figure.className = "sample";
        figure.dataset.series = sample.series;
        figure.dataset.iteration = String(sample.iteration);
        figure.innerHTML = '<a target="_blank" rel="noopener"><img alt=""></a>' +
          '<figcaption class="small"><span></span> <span class="muted"></span></figcaption>';
        figure.querySelector("a").href = urlOf(sample);
        figure.querySelector("img").alt = sample.title + " / " + sample.series + " @ " + sample.iteration;
        figure.querySelector("figcaption span").textContent = sample.series;
        figure.querySelector("figcaption .muted").textContent = "iteration " + sample.iteration;
        group.insertBefore(figure, group.firstChild);
      }
      figure.querySelector("img").src = urlOf(sample) + "?v=" + version;
    }
    every(function () { return ACTIVE_POLL_MS; }, function () {
      return getJson(box.dataset.samplesSinceUrl + "?seq=" + seq).then(function (payload) {
        seq = payload.seq;
        payload.samples.forEach(function (sample) { show(sample, seq); });
      });
    });
  }

  // ------------------------------------------------------------ selecting tasks to compare

  // Ticked tasks are kept for the browser tab (sessionStorage), so tasks from several
  // pages, projects or pipelines can be compared together.
  var SELECTION_KEY = "pipelines.compare";
  var MAX_COMPARED = 10;

  function selection() {
    try { return JSON.parse(sessionStorage.getItem(SELECTION_KEY) || "[]"); } catch (e) { return []; }
  }

  function saveSelection(ids) {
    try { sessionStorage.setItem(SELECTION_KEY, JSON.stringify(ids)); } catch (e) { /* private mode */ }
  }

  function syncSelection() {
    var bar = document.getElementById("compare-bar");
    if (!bar) return;
    var ids = selection();
    document.querySelectorAll("input[data-select-task]").forEach(function (box) {
      box.checked = ids.indexOf(box.dataset.selectTask) >= 0;
    });
    bar.hidden = ids.length === 0;
    document.getElementById("compare-count").textContent = ids.length + " task" +
      (ids.length === 1 ? "" : "s") + " selected" + (ids.length < 2 ? ": tick one more to compare" : "");
    document.getElementById("compare-go").disabled = ids.length < 2;
  }

  function setUpSelection() {
    var bar = document.getElementById("compare-bar");
    if (!bar) return;
    document.addEventListener("change", function (event) {
      var box = event.target;
      if (!box.dataset || box.dataset.selectTask === undefined) return;
      var ids = selection().filter(function (id) { return id !== box.dataset.selectTask; });
      if (box.checked) ids.push(box.dataset.selectTask);
      saveSelection(ids.slice(-MAX_COMPARED));
      syncSelection();
    });
    document.getElementById("compare-go").addEventListener("click", function () {
      window.location.href = bar.dataset.compareUrl + "?ids=" + selection().join(",");
    });
    document.getElementById("compare-clear").addEventListener("click", function () {
      saveSelection([]);
      syncSelection();
    });
    syncSelection();
  }

  function setUpDifferences() {
    var toggle = document.getElementById("only-differences");
    if (!toggle) return;
    toggle.addEventListener("change", function () {
      document.querySelectorAll(".compare-table").forEach(function (table) {
        table.classList.toggle("only-differences", toggle.checked);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // On a narrow screen the tab strip scrolls; keep the open tab in sight.
    var activeTab = document.querySelector(".tabs .tab.active");
    if (activeTab) activeTab.scrollIntoView({ block: "nearest", inline: "nearest" });
    setUpDialogs();
    setUpTaskStatus();
    setUpTableStatus();
    setUpConsole();
    setUpSamples();
    setUpSelection();
    setUpDifferences();
  });

  window.pipelinesDashboard = {
    every: every, getJson: getJson, pill: pill, ago: ago, syncSelection: syncSelection,
  };
})();
