/*
 * QMS admin: keeps the queue console current without reloading. It polls the staff stats endpoint
 * (GET /api/events/<id>/queue/stats/, session auth) and
 *  - refreshes every [data-qms-stat] cell (the list's columns, the panel's numbers),
 *  - shows each [data-qms-when="flag:value ..."] badge or operation only while the stats say so (and
 *    disables the hidden buttons), so pause/resume, drain/undrain and the pre-queue badge follow the queue,
 *  - stamps the time of the last answer: 24-hour, in the server's time zone (the one every other time on
 *    the page is shown in), zone named.
 * Words come from Django's JavaScript catalog (the admin's language); without it, English.
 */
(function () {
  "use strict";

  var STATS_MS = 2000, CHART_MS = 15000;
  var _ = window.gettext || function (text) { return text; };
  var fmt = window.interpolate || function (text, values) {
    return text.replace(/%\(\w+\)s/g, function (key) { return values[key.slice(2, -2)]; });
  };
  var lang = document.documentElement.lang || undefined;

  function duration(seconds) {
    seconds = Number(seconds);
    if (!seconds) { return "—"; }
    if (seconds < 60) { return fmt(_("%(seconds)s s"), { seconds: seconds }, true); }
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) { return fmt(_("%(minutes)s min"), { minutes: minutes }, true); }
    return fmt(_("%(hours)s h %(minutes)s min"), { hours: Math.floor(minutes / 60), minutes: minutes % 60 }, true);
  }

  function clock(timeZone) {
    var options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    try {
      return new Intl.DateTimeFormat(lang, Object.assign({ timeZone: timeZone || "UTC" }, options));
    } catch (unknownZone) {
      return new Intl.DateTimeFormat(lang, Object.assign({ timeZone: "UTC" }, options));
    }
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

  // "paused:false prequeue:false": every condition holds.
  function holds(conditions, stats) {
    return conditions.split(" ").every(function (condition) {
      var parts = condition.split(":");
      return String(stats[parts[0]]) === parts[1];
    });
  }

  function follow(panel, stats) {
    panel.querySelectorAll("[data-qms-when]").forEach(function (el) {
      var offered = holds(el.dataset.qmsWhen, stats);
      el.hidden = !offered;
      el.querySelectorAll("button, input, a").forEach(function (control) {
        if (control.tagName === "A") { control.setAttribute("aria-disabled", String(!offered)); }
        else { control.disabled = !offered; }
      });
    });
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
      if (el.dataset.qmsFormat === "duration") { el.textContent = duration(el.textContent); }
    });
    var panel = document.querySelector("[data-qms-panel]");
    if (panel && !groups[panel.dataset.qmsStatsUrl]) { groups[panel.dataset.qmsStatsUrl] = []; }
    Object.keys(groups).forEach(function (url) {
      var after = null;
      if (panel && url === panel.dataset.qmsStatsUrl) {
        var stamp = panel.querySelector("[data-qms-updated]"), time = clock(panel.dataset.qmsTimeZone);
        after = function (stats) {
          follow(panel, stats);
          stamp.textContent = time.format(new Date());
          stamp.dateTime = new Date().toISOString();
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
