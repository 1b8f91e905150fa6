// Sortable tables (table.sortable): each column header gets a button; pressing it sorts the rows by
// that column (numbers as numbers, blanks last), pressing again reverses, and the header's aria-sort
// says how the table is sorted. A cell's data-sort value, when present, is what is compared.
(function () {
  "use strict";
  function key(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") { return null; }
    if (numeric) {
      var x = parseFloat(raw);
      return isNaN(x) ? null : x;
    }
    return raw.toLocaleLowerCase();
  }

  function sortBy(table, th, index) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var numeric = th.dataset.type === "number";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, k) { row.dataset.order = k; });  // a stable sort on any engine
    rows.sort(function (a, b) {
      var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
      if (x === null || y === null) {
        return x === y ? a.dataset.order - b.dataset.order : (x === null ? 1 : -1);  // blanks last
      }
      var c = numeric ? x - y : x.localeCompare(y);
      return (ascending ? c : -c) || a.dataset.order - b.dataset.order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th[aria-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var status = table.parentNode.querySelector(".sort-status");
    if (status) {
      status.textContent = "Sorted by " + th.textContent.trim() + ", " + (ascending ? "ascending" : "descending") + ".";
    }
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var status = document.createElement("p");
    status.className = "sort-status sr-only";
    status.setAttribute("role", "status");
    table.parentNode.insertBefore(status, table);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      if (th.hasAttribute("data-nosort")) { return; }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, th, index); });
    });
  });
})();
