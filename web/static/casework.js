/* Attachments (workbench/_attachments.html): a file over the size limit is refused in the browser, before it
   crosses a slow link — the server refuses it as well, in the same words. Progressive enhancement: without
   the script the server's answer stands. */
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    var message = input.getAttribute("data-too-large") || "";
    input.addEventListener("change", function () {
      var big = Array.prototype.some.call(input.files || [], function (file) { return file.size > max; });
      input.setCustomValidity(big ? message : "");
      if (big) input.reportValidity();
    });
  });
});
