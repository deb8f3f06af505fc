/*
 * QMS admin: keeps the live queue numbers current without reloading, by polling the staff
 * stats endpoint (GET /api/events/<id>/queue/stats/, session auth), and refreshes the chart.
 */
(function () {
  "use strict";

  var STATS_MS = 2000, CHART_MS = 15000;

  function duration(seconds) {
    seconds = Number(seconds);
    if (!seconds) { return "—"; }
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) { return minutes + " min"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function show(el, value) {
    var text = el.dataset.qmsFormat === "duration" ? duration(value) : String(value);
    if (el.textContent !== text) {
      el.textContent = text;
      el.classList.remove("qms-live--changed");
      void el.offsetWidth; // restart the highlight
      el.classList.add("qms-live--changed");
    }
  }

  function poll(url, cells, after) {
    var run = function () {
      window.fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (stats) {
          if (!stats) { return; }
          cells.forEach(function (el) { if (el.dataset.qmsStat in stats) { show(el, stats[el.dataset.qmsStat]); } });
          if (after) { after(stats); }
        })
        .catch(function () { /* the next round tries again */ })
        .then(function () { setTimeout(run, STATS_MS); });
    };
    run();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var groups = {};
    document.querySelectorAll(".qms-live[data-qms-stat]").forEach(function (el) {
      var panel = el.closest("[data-qms-panel]");
      var url = el.dataset.qmsStatsUrl || (panel && panel.dataset.qmsStatsUrl);
      if (url) { (groups[url] = groups[url] || []).push(el); }
    });
    var panel = document.querySelector("[data-qms-panel]");
    Object.keys(groups).forEach(function (url) {
      var after = null;
      if (panel && url === panel.dataset.qmsStatsUrl) {
        after = function (stats) {
          var badge = panel.querySelector("[data-qms-paused-badge]");
          badge.textContent = stats.paused ? "Paused" : "Admitting";
          badge.className = "qms-badge " + (stats.paused ? "qms-badge--warn" : "qms-badge--ok");
          var stamp = panel.querySelector("[data-qms-updated]");
          stamp.textContent = new Date().toLocaleTimeString();
        };
      }
      poll(url, groups[url], after);
    });
    if (panel && panel.dataset.qmsChartUrl) {
      var box = panel.querySelector("[data-qms-chart]");
      setInterval(function () {
        window.fetch(panel.dataset.qmsChartUrl, { credentials: "same-origin", cache: "no-store" })
          .then(function (response) { return response.ok ? response.text() : null; })
          .then(function (svg) { if (svg) { box.innerHTML = svg; } })
          .catch(function () { /* keep the last chart */ });
      }, CHART_MS);
    }
  });
}());
