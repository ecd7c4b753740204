document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var cell = row.cells[column], text = cell.getAttribute("data-sort") || cell.textContent;
      text = text.trim();
      return /^-?[0-9]+(\.[0-9]+)?$/.test(text) ? [0, parseFloat(text)] : [1, text.toLowerCase()];
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      // Numbers before text; text in natural order (student9 before student10).
      var order = x[0] !== y[0] ? x[0] - y[0]
        : x[0] === 0 ? x[1] - y[1] : x[1].localeCompare(y[1], undefined, {numeric: true});
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
