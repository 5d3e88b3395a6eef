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
