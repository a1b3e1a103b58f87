// The charts and image grids of a cao2 report, drawn from the JSON block #report-data; charts by Chart.js (inlined
// before this script). Both are made when they come near the screen, so that a report of 1,000 classes opens fast,
// and all at once before printing. Written for the browser as it is (no build step).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  Chart.defaults.animation = false; // drawn at once: for printing, and so that a drawn canvas is a finished chart
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  var binLabels = [];
  for (var b = 0; b < data.bins; b++) binLabels.push((b / data.bins).toFixed(2) + "–" + ((b + 1) / data.bins).toFixed(2));

  function histogram(h, title) {
    return {
      type: "bar",
      data: {
        labels: binLabels,
        datasets: [
          { label: "pool", data: h.pool, backgroundColor: "rgba(127,127,127,0.45)", grouped: false, barPercentage: 1, categoryPercentage: 1 },
          { label: "selected", data: h.selected, backgroundColor: "rgba(31,119,180,0.85)", grouped: false, barPercentage: 0.6, categoryPercentage: 1 },
        ],
      },
      options: {
        plugins: { title: { display: !!title, text: title } },
        scales: {
          x: { title: { display: true, text: "selector confidence in the class" }, ticks: { maxTicksLimit: 6 } },
          y: { title: { display: true, text: "candidates" }, beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    };
  }

  function timing() {
    var t = data.timing;
    return {
      type: "bar",
      data: {
        labels: t.labels,
        datasets: t.stages.map(function (s, i) {
          return { label: s.stage, data: s.seconds, backgroundColor: COLORS[i] };
        }),
      },
      options: {
        scales: {
          x: { stacked: true, ticks: { autoSkip: true, maxTicksLimit: 40 } },
          y: { stacked: true, title: { display: true, text: "seconds" }, beginAtZero: true },
        },
      },
    };
  }

  function curve(i) {
    var e = data.evals[i];
    return {
      type: "line",
      data: {
        datasets: e.repeats.map(function (r, k) {
          return {
            label: "repeat " + r.repeat,
            data: r.curve.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: COLORS[k % COLORS.length],
            backgroundColor: COLORS[k % COLORS.length],
            pointRadius: 2,
          };
        }),
      },
      options: {
        scales: {
          x: { type: "linear", title: { display: true, text: "epoch" } },
          y: { title: { display: true, text: "test top-1 (%)" } },
        },
      },
    };
  }

  // The paper's Fig. 3 style: one line per training set over the IPCs of a protocol and student.
  function ipc(column) {
    var rows = data.evals.filter(function (e) { return e.column === column; });
    var labels = [];
    rows.forEach(function (e) { if (labels.indexOf(e.label) < 0) labels.push(e.label); });
    return {
      type: "line",
      data: {
        datasets: labels.map(function (label, k) {
          var pts = rows
            .filter(function (e) { return e.label === label; })
            .sort(function (a, b) { return a.ipc - b.ipc; })
            .map(function (e) { return { x: e.ipc, y: e.best.mean, std: e.best.std }; });
          return { label: label, data: pts, borderColor: COLORS[k % COLORS.length], backgroundColor: COLORS[k % COLORS.length], pointRadius: 3 };
        }),
      },
      options: {
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (c) { return c.dataset.label + ": " + c.raw.y.toFixed(2) + " ± " + c.raw.std.toFixed(2) + " (IPC " + c.raw.x + ")"; },
            },
          },
        },
        scales: {
          x: {
            type: "logarithmic",
            title: { display: true, text: "images per class" },
            // Ticks at the IPCs measured, not at every power-of-ten subdivision.
            afterBuildTicks: function (scale) {
              var ipcs = [];
              rows.forEach(function (e) { if (ipcs.indexOf(e.ipc) < 0) ipcs.push(e.ipc); });
              scale.ticks = ipcs.sort(function (a, b) { return a - b; }).map(function (v) { return { value: v }; });
            },
            ticks: { callback: function (v) { return String(v); } },
          },
          y: { title: { display: true, text: "best test top-1 (%), mean over repeats" } },
        },
      },
    };
  }

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (ch) { return "&#" + ch.charCodeAt(0) + ";"; });
  }

  // One distilled image with its caption, markers, and (when the run kept it) before | after | difference on hover.
  function figure(it) {
    var tags = (it.filled ? '<span class="tag filled" title="filled in from the candidates the selector did not recognise">filled in</span>' : "") +
      (it.wrong && !it.filled ? '<span class="tag wrong">predicted ' + esc(it.pred) + "</span>" : "");
    var before = it.before
      ? '<div class="before"><figure><img class="pre" src="' + esc(it.before) + '" alt="before refinement" decoding="async"><figcaption>before</figcaption></figure>' +
        '<figure><img class="post" src="' + esc(it.src) + '" alt="after refinement" decoding="async"><figcaption>after</figcaption></figure>' +
        '<figure><img class="diff" src="' + esc(it.diff) + '" alt="difference" decoding="async"><figcaption>|after − before| × ' + data.amplify + "</figcaption></figure></div>"
      : "";
    return '<figure class="item' + (it.filled ? " is-filled" : "") + (it.before ? " has-before" : "") + '" tabindex="0">' +
      '<img class="distilled" src="' + esc(it.src) + '" alt="' + esc(it.alt) + '" decoding="async">' +
      "<figcaption><span>pool #" + it.pool + "</span><span>" + esc(it.pred) + " " + it.conf + "</span><span>loss " + esc(it.loss) + "</span>" + tags + "</figcaption>" +
      before + "</figure>";
  }

  function fillGrid(grid) {
    if (grid.dataset.drawn) return;
    grid.dataset.drawn = "1";
    grid.innerHTML = data.grids[grid.dataset.class].map(figure).join("");
  }

  function config(canvas) {
    var d = canvas.dataset;
    if (d.chart === "hist") return d.class === "all" ? histogram(data.overall, "") : histogram(data.classes[d.class], "");
    if (d.chart === "timing") return timing();
    if (d.chart === "curve") return curve(Number(d.eval));
    if (d.chart === "ipc") return ipc(d.column);
    throw new Error("unknown chart " + d.chart);
  }

  function draw(el) {
    if (el.tagName === "CANVAS") {
      if (el.dataset.drawn) return;
      el.dataset.drawn = "1";
      new Chart(el, config(el));
    } else {
      fillGrid(el);
    }
  }
  var pending = Array.prototype.slice.call(document.querySelectorAll("canvas[data-chart], .grid[data-class]"));
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(
      function (entries) {
        entries.forEach(function (en) {
          if (en.isIntersecting) {
            io.unobserve(en.target);
            draw(en.target);
          }
        });
      },
      { rootMargin: "600px" },
    );
    pending.forEach(function (el) { io.observe(el); });
  } else {
    pending.forEach(draw);
  }
  // Printing shows everything: every grid and chart drawn.
  window.addEventListener("beforeprint", function () { pending.forEach(draw); });
})();
