/* Analytics dashboard: draws the charts described in the #chart-data JSON block with the
   vendored ECharts, and downloads each as PNG (canvas) or SVG (server-side-rendering mode of
   ECharts, no DOM). Loaded as a file: the Content-Security-Policy forbids inline script. */
(function () {
  "use strict";
  var COLORS = ["#4338ca", "#0e9384", "#dc6803", "#c11574", "#1570ef", "#667085"];
  var charts = {};
  var options = {};

  function base(spec) {
    return {
      animation: false, color: COLORS,
      title: { show: false, text: spec.title },
      tooltip: { trigger: spec.kind === "line" || spec.kind === "bar" ? "axis" : "item" },
      grid: { left: 48, right: 16, top: 36, bottom: 40, containLabel: true }
    };
  }

  function optionFor(spec) {
    var o = base(spec);
    if (spec.kind === "line" || spec.kind === "bar") {
      o.legend = { top: 0, type: "scroll" };
      o.xAxis = { type: "category", data: spec.x };
      o.yAxis = { type: "value", minInterval: spec.kind === "bar" ? 1 : 0 };
      o.series = spec.series.map(function (s) {
        return { name: s.name, type: spec.kind, data: s.data, connectNulls: false,
                 showSymbol: spec.kind === "line" && spec.x.length < 40 };
      });
    } else if (spec.kind === "funnel") {
      o.series = [{ type: "funnel", sort: "none", left: "5%", width: "58%", top: 16, bottom: 16,
                    label: { formatter: "{b}: {c}" }, data: spec.stages }];
    } else if (spec.kind === "heatmap") {
      o.tooltip = { position: "top" };
      o.grid.bottom = 60;
      o.xAxis = { type: "category", data: spec.x, name: "months since acquisition",
                  nameLocation: "middle", nameGap: 28, splitArea: { show: true } };
      o.yAxis = { type: "category", data: spec.y, splitArea: { show: true } };
      o.visualMap = { min: 0, max: 100, calculable: false, orient: "horizontal", left: "center",
                      bottom: 0, itemHeight: 120, text: ["100 %", "0 %"],
                      inRange: { color: ["#eef2ff", "#4338ca"] } };
      o.series = [{ type: "heatmap", data: spec.data, label: { show: spec.y.length <= 12 } }];
    }
    return o;
  }

  function link(name, href) {
    var a = document.createElement("a");
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function save(name, blob) {
    var url = URL.createObjectURL(blob);
    link(name, url);
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function download(key, type) {
    var chart = charts[key];
    if (!chart) { return; }
    if (type === "png") {
      // a data: URL followed as a download (connect-src would refuse fetching it)
      link("accord-" + key + ".png",
           chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" }));
      return;
    }
    var svg = window.echarts.init(null, null, {
      renderer: "svg", ssr: true, width: chart.getWidth(), height: chart.getHeight()
    });
    var o = Object.assign({}, options[key], { backgroundColor: "#fff" });
    svg.setOption(o);
    var text = svg.renderToSVGString();
    svg.dispose();
    save("accord-" + key + ".svg", new Blob([text], { type: "image/svg+xml" }));
  }

  function start() {
    var block = document.getElementById("chart-data");
    if (!block || !window.echarts) { return; }
    var data = JSON.parse(block.textContent || "{}");
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var key = el.getAttribute("data-chart");
      if (!data[key]) { return; }
      options[key] = optionFor(data[key]);
      charts[key] = window.echarts.init(el, null, { renderer: "canvas" });
      charts[key].setOption(options[key]);
    });
    document.querySelectorAll("[data-download]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        download(btn.getAttribute("data-chart-key"), btn.getAttribute("data-download"));
      });
    });
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (k) { charts[k].resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
