/* The case page's BPMN diagram (web/templates/workbench/_diagram.html). A <div class="bpmn-diagram"
   data-src="…/diagram"> is filled with the process drawn by the vendored bpmn-js viewer (the global BpmnJS of
   bpmn-navigated-viewer: drag to pan, the buttons to zoom; the mouse wheel is left to the page, so scrolling
   past the diagram never gets stuck in it), its steps marked from the JSON {xml, done, current, cancelled,
   fired}: CSS classes added with canvas.addMarker, coloured in diagram.css.
   Until the drawing is done, and for good when it cannot be (no script, the viewer not loaded, a network
   error, an XML the viewer refuses), the server-rendered list of steps stands in its place; on failure it
   says so. No inline code anywhere: the Content-Security-Policy forbids it. */
"use strict";
(function () {
  // applied in this order, a later marker replacing an earlier one on the same element: a step cancelled
  // once and done later is done; a step done once and ready again (returned for 补正) is current.
  // The designer's version diff (templates/design/diff.html) marks added, changed and removed elements.
  var MARKERS = ["cancelled", "fired", "done", "current", "removed", "changed", "added"];

  function fail(box, error) {
    box.classList.add("failed");
    box.querySelector(".diagram-canvas").hidden = true;
    box.querySelector(".diagram-tools").hidden = true;
    box.querySelector(".diagram-fallback").hidden = false;
    box.querySelector(".diagram-error").hidden = false;
    if (window.console) window.console.warn("bpmn diagram:", error);
  }

  function mark(viewer, data) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var marked = {};
    MARKERS.forEach(function (marker) {
      (data[marker] || []).forEach(function (id) {
        if (!registry.get(id)) return;  // an id of another version's drawing: nothing to colour
        if (marked[id]) canvas.removeMarker(id, marked[id]);
        canvas.addMarker(id, marker);
        marked[id] = marker;
      });
    });
  }

  // the drawing fills at most this share of the box, leaving a margin for strokes and labels at the edges
  var MARGIN = 0.94;

  // The box as tall as the process needs at the width it has (a long process in a wide box stays readable,
  // within 200 px and 70 % of the window's height), then the whole process in it, centred, never enlarged
  // past 100 %.
  function fit(container, canvas) {
    var inner = canvas.viewbox().inner;
    if (inner && inner.width > 0 && inner.height > 0) {
      var scale = Math.min(1, MARGIN * container.clientWidth / inner.width);
      var height = Math.ceil(inner.height * scale / MARGIN);
      container.style.height = Math.max(200, Math.min(height, Math.round(window.innerHeight * 0.7))) + "px";
    }
    canvas.resized();
    canvas.zoom("fit-viewport", "auto");
    if (canvas.zoom() < 1) canvas.zoom(canvas.zoom() * MARGIN, "auto");
  }

  function tools(box, container, canvas) {
    var bar = box.querySelector(".diagram-tools");
    bar.addEventListener("click", function (event) {
      var action = event.target.getAttribute("data-zoom");
      if (action === "fit") fit(container, canvas);
      else if (action) canvas.zoom(canvas.zoom() * (action === "in" ? 1.25 : 0.8));
    });
    bar.hidden = false;
  }

  function draw(box) {
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      fail(box, "the bpmn-js viewer did not load");
      return;
    }
    var container = box.querySelector(".diagram-canvas");
    window.fetch(box.getAttribute("data-src"), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        container.hidden = false;  // the viewer measures its container: shown before the import
        var viewer = new window.BpmnJS({container: container, zoomScroll: {enabled: false}});
        return viewer.importXML(data.xml).then(function () {
          var canvas = viewer.get("canvas");
          mark(viewer, data);
          fit(container, canvas);
          tools(box, container, canvas);
          box.querySelector(".diagram-fallback").hidden = true;
          box.classList.add("drawn");
          var timer = null;
          window.addEventListener("resize", function () {
            window.clearTimeout(timer);
            timer = window.setTimeout(function () { fit(container, canvas); }, 150);
          });
        });
      })
      .catch(function (error) { fail(box, error); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".bpmn-diagram[data-src]").forEach(draw);
  });
})();
