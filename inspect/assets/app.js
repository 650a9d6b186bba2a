// Crucible inspect: typeset math with KaTeX and follow a run in progress.
// No row data passes through here: the server renders every page.
"use strict";

function typeset(root) {
  if (typeof katex === "undefined") return;
  root.querySelectorAll(".math").forEach(function (el) {
    if (el.dataset.done) return;
    el.dataset.done = "1";
    try {
      katex.render(el.textContent, el, {
        displayMode: el.classList.contains("display"),
        throwOnError: false,
        trust: false,
        strict: "ignore",
      });
    } catch (e) {
      el.classList.add("math-error");
    }
  });
}

// Pages of a run still running carry data-poll: the status URL. Each stage
// row's cells are updated in place; the page reloads once the run ends.
function poll(root) {
  var url = root.dataset.poll;
  if (!url) return;
  var tick = function () {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (st) {
        (st.stages || []).forEach(function (s) {
          var row = document.querySelector('tr[data-stage="' + CSS.escape(s.name) + '"]');
          if (!row) return;
          ["status", "lines", "rows", "seconds", "bytes", "errors"].forEach(function (k) {
            var cell = row.querySelector('[data-k="' + k + '"]');
            if (cell && s[k] !== undefined) cell.textContent = String(s[k]);
          });
          row.className = "status-" + s.status;
        });
        var stamp = document.getElementById("updated");
        if (stamp) stamp.textContent = st.updated || "";
        if (st.live) setTimeout(tick, 2000);
        else if (root.dataset.wasLive === "1") location.reload();
      })
      .catch(function () { setTimeout(tick, 5000); });
  };
  root.dataset.wasLive = "1";
  setTimeout(tick, 2000);
}

document.addEventListener("DOMContentLoaded", function () {
  typeset(document);
  poll(document.body);
});
