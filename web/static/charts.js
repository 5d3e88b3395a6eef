/* The charts page (web/templates/supervise/charts.html): each <figure data-chart="id"> gets its chart drawn by
   the vendored ECharts (the global `echarts` of echarts.common.min.js) from the page's JSON
   (<script type="application/json" id="chart-data">: a list of {id, kind, categories, rows, columns: [{name,
   values, links, kind, draw, color}]}, the same numbers as the table under the chart, in the page's
   language). SVG, so that print and tests read it; redrawn when its box changes width. Clicking a bar or a
   point opens the list behind it (the column's link for that row), as the table's numbers do.
   Without script, or if the library did not load, the tables stand alone (opened). No inline code
   anywhere: the Content-Security-Policy forbids it. */
"use strict";
(function () {
  var source = document.getElementById("chart-data");
  if (!source) return;
  var charts;
  try {
    charts = JSON.parse(source.textContent);
  } catch (error) {
    return;
  }
  var english = (document.documentElement.lang || "").indexOf("en") === 0;
  var NARROW = 480;  // px of a chart's box under which labels shrink (a phone)
  var ROW = 26;      // px a bar of a horizontal chart takes

  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function shown(col, value) {
    if (value === null || value === undefined) return "—";
    return col.kind === "percent" ? (value * 100).toFixed(1) + "%" : String(value);
  }

  function drawn(chart) {
    return chart.columns.filter(function (col) { return col.draw; });
  }

  // the tooltip: the row's full label and every column of the table, drawn or not
  function tooltip(chart) {
    return function (params) {
      var list = Array.isArray(params) ? params : [params];
      if (!list.length) return "";
      var i = list[0].dataIndex;
      var lines = ["<b>" + escape(chart.rows[i]) + "</b>"];
      chart.columns.forEach(function (col) {
        lines.push(escape(col.name) + "：" + escape(shown(col, col.values[i])));
      });
      return lines.join("<br>");
    };
  }

  function option(chart, width) {
    var narrow = width < NARROW;
    var horizontal = chart.kind === "rate" || chart.kind === "stack";
    var rate = chart.kind === "rate";
    var columns = drawn(chart);
    var legend = columns.length > 1;
    var category = {
      type: "category", data: chart.categories, inverse: horizontal,
      axisTick: {alignWithLabel: true},
      axisLabel: horizontal
        ? {width: narrow ? 84 : 168, overflow: "truncate", fontSize: narrow ? 11 : 12}
        : {hideOverlap: true, fontSize: narrow ? 10 : 12,
           // every week named while they fit (a label is about 40 px), else as many as fit
           interval: chart.categories.length * (narrow ? 36 : 44) < width ? 0 : "auto"}
    };
    var value = {
      type: "value", minInterval: rate ? 0 : 1, max: rate ? 1 : null, splitNumber: narrow ? 3 : 5,
      interval: rate ? (narrow ? 0.25 : 0.2) : null,
      axisLabel: {fontSize: narrow ? 10 : 12,
                  formatter: rate ? function (v) { return Math.round(v * 100) + "%"; } : null}
    };
    return {
      animation: false,
      textStyle: {fontFamily: getComputedStyle(document.body).fontFamily},
      legend: legend ? {top: 0, left: 0, itemWidth: 14, itemHeight: 10, textStyle: {fontSize: narrow ? 11 : 12}}
        : {show: false},
      grid: {left: 4, right: rate ? (narrow ? 44 : 52) : 12, top: legend ? 30 : 8, bottom: 4, containLabel: true},
      tooltip: {trigger: "axis", axisPointer: {type: horizontal ? "shadow" : (chart.kind === "line" ? "line" : "shadow")},
                confine: true, formatter: tooltip(chart)},
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: columns.map(function (col) {
        var s = {
          name: col.name, type: chart.kind === "line" ? "line" : "bar", cursor: "pointer",
          // no number: no bar ("-"); a rate of no closures is an empty bar labelled "—", as in the table
          data: col.values.map(function (v) {
            if (v !== null) return v;
            return rate ? {value: 0, itemStyle: {color: "transparent"}, none: true} : "-";
          }),
          itemStyle: {color: col.color || undefined}, emphasis: {focus: "none"}
        };
        if (chart.kind === "stack") { s.stack = "total"; s.barMaxWidth = 18; }
        if (chart.kind === "line") { s.symbolSize = 8; s.lineStyle = {width: 2}; }
        if (chart.kind === "bar") s.barMaxWidth = 18;
        if (rate) {
          s.barMaxWidth = 16;
          s.label = {show: true, position: "right", fontSize: narrow ? 10 : 11,
                     formatter: function (p) { return shown(col, col.values[p.dataIndex]); }};
        }
        return s;
      })
    };
  }

  function draw(figure, chart) {
    var box = figure.querySelector(".chart-canvas");
    if (!box) return;
    box.hidden = false;
    if (chart.kind === "rate" || chart.kind === "stack") {
      var legend = drawn(chart).length > 1 ? 30 : 8;
      box.style.height = Math.max(160, chart.categories.length * ROW + legend + 36) + "px";
    }
    var instance = window.echarts.init(box, null, {renderer: "svg", locale: english ? "EN" : "ZH"});
    var width = box.clientWidth;
    instance.setOption(option(chart, width));
    instance.on("click", function (params) {
      var col = drawn(chart)[params.seriesIndex];
      var url = col && col.links[params.dataIndex];
      if (url) window.location.href = url;
    });
    var redraw = function () {
      var now = box.clientWidth;
      if (now === width) return;
      if ((now < NARROW) !== (width < NARROW)) instance.setOption(option(chart, now), true);
      width = now;
      instance.resize();
    };
    if (window.ResizeObserver) new window.ResizeObserver(redraw).observe(box);
    else window.addEventListener("resize", redraw);
  }

  function failed(figure, error) {
    var box = figure.querySelector(".chart-canvas");
    if (box) box.hidden = true;
    var note = figure.querySelector(".chart-error");
    if (note) note.hidden = false;
    var table = figure.querySelector("details.chart-data");
    if (table) table.open = true;
    if (window.console) window.console.warn("chart:", error);
  }

  function start() {
    charts.forEach(function (chart) {
      var figure = document.getElementById("chart-" + chart.id);
      if (!figure) return;
      try {
        if (!window.echarts) throw new Error("ECharts did not load");
        draw(figure, chart);
      } catch (error) {
        failed(figure, error);
      }
    });
    // a printed page holds the numbers too
    window.addEventListener("beforeprint", function () {
      Array.prototype.forEach.call(document.querySelectorAll("details.chart-data"), function (d) { d.open = true; });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
