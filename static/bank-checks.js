// The bank list's progress while the server checks every item in the background: asks how far it
// is every few seconds, moves the bar and says so in the status line; when every item is checked it
// offers a reload (it never reloads by itself, so a filter being typed is not lost).
(function () {
  "use strict";
  var box = document.getElementById("bank-checks");
  if (!box || !window.fetch) { return; }
  var bar = document.getElementById("bank-checks-bar");
  var count = document.getElementById("bank-checks-count");
  function ask() {
    fetch(box.dataset.progress, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        bar.value = p.checked;
        bar.max = p.total;
        if (p.complete) {
          count.textContent = "All " + p.total + " items checked. Reload to see their states.";
        } else {
          count.textContent = p.checked + " of " + p.total + " items checked.";
          window.setTimeout(ask, 3000);
        }
      })
      .catch(function () { window.setTimeout(ask, 10000); });
  }
  window.setTimeout(ask, 3000);
}());
