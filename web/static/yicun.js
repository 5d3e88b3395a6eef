/* Yicun's only script (the Content-Security-Policy allows no inline code). Progressive enhancement:
   every page works without it.
   - A field marked data-only-for-role="ROLE" (the department of a county officer) is shown only while the
     form's role select ([data-role-select]) says ROLE; without the script it stays visible with its hint,
     and the server ignores it for every other role. */
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form").forEach(function (form) {
    var select = form.querySelector("select[data-role-select]");
    if (!select) return;
    var fields = form.querySelectorAll("[data-only-for-role]");
    function sync() {
      fields.forEach(function (field) {
        field.hidden = select.value !== field.getAttribute("data-only-for-role");
      });
    }
    select.addEventListener("change", sync);
    sync();
  });
});
/* - [data-print] buttons print the page (the printable papers: 受理回执, 一次性告知书).
   - [data-filter-list="ID"] inputs narrow the list #ID as one types, on each item's data-search words
     (name, code, pinyin initials); the server does the same search for the form's submit. */
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("[data-filter-list]").forEach(function (input) {
    var id = input.getAttribute("data-filter-list");
    var list = document.getElementById(id);
    var empty = document.querySelector('[data-filter-empty="' + id + '"]');
    if (!list) return;
    function filter() {
      var q = input.value.trim().toLowerCase(), shown = 0;
      list.querySelectorAll("[data-search]").forEach(function (li) {
        var hit = !q || li.getAttribute("data-search").indexOf(q) >= 0 ||
          li.getAttribute("data-search").indexOf(q.replace(/-/g, "")) >= 0;
        li.hidden = !hit;
        if (hit) shown++;
      });
      if (empty) empty.hidden = shown > 0;
    }
    input.addEventListener("input", filter);
  });
});
