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

    function append(lines) {
      if (!lines.length) return;
      if (placeholder) { placeholder.remove(); placeholder = null; }
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) {
        var span = document.createElement("span");
        span.className = "line line-" + line.stream;
        span.textContent = line.text.replace(/\n$/, "") + "\n";
        fragment.appendChild(span);
      });
      box.appendChild(fragment);
      if (!follow || follow.checked) box.scrollTop = box.scrollHeight;
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

  document.addEventListener("DOMContentLoaded", function () {
    // On a narrow screen the tab strip scrolls; keep the open tab in sight.
    var activeTab = document.querySelector(".tabs .tab.active");
    if (activeTab) activeTab.scrollIntoView({ block: "nearest", inline: "nearest" });
    setUpDialogs();
    setUpTaskStatus();
    setUpTableStatus();
    setUpConsole();
  });

  window.pipelinesDashboard = { every: every, getJson: getJson, pill: pill, ago: ago };
})();
