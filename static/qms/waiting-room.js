/*
 * QMS waiting room: follows the fan's place live over the WebSocket and falls back to polling
 * the HTTP status endpoint. Plain JavaScript, no dependencies, no build step.
 *
 * Protocol (queues/consumers.py, queues/notify.py): `queued` gives the place at connect;
 * each `progress` broadcast carries the serving watermark, from which the page derives
 * ahead = max(0, ahead_at_queued - (serving - served_at_queued)).
 *
 * Language: strings go through Django's JavaScript catalog (`/jsi18n/`, loaded first: gettext,
 * ngettext, interpolate); numbers, times and durations through Intl with the page's `lang`.
 *
 * Proof of work (queues/challenge.py): a fan without a place at an event that asks for it is
 * refused by the socket with close 4428 and a challenge; the page finds a solution with
 * WebCrypto SHA-256 in batches (yielding between them), joins over HTTP with it, then reconnects.
 */
(function () {
  "use strict";

  var root = document.getElementById("waiting-room");
  if (!root) { return; }

  var CLOSE = { ADMITTED: 4000, LEFT: 4001, SUPERSEDED: 4002, RESET: 4003, UNAUTHENTICATED: 4401,
    ORIGIN: 4403, UNKNOWN_EVENT: 4404, DRAINING: 4409, POW_REQUIRED: 4428 };
  var TERMINAL = { admitted: true, superseded: true, reset: true, left: true, closed: true, notopen: true, error: true };
  var POW_BATCH = 512, POW_MAX_ROUNDS = 3;
  var PING_MS = 25000, POLL_MS = 5000, MAX_BACKOFF_MS = 30000, REDIRECT_DELAY_MS = 1200, ANNOUNCE_EVERY_MS = 20000;

  var cfg = {
    eventId: root.dataset.eventId,
    wsPath: root.dataset.wsPath,
    statusUrl: root.dataset.statusUrl,
    loginUrl: root.dataset.loginUrl,
    csrf: root.dataset.csrf,
    saleStartsAt: Date.parse(root.dataset.saleStartsAt),
    prequeueOpensAt: root.dataset.prequeueOpensAt ? Date.parse(root.dataset.prequeueOpensAt) : null
  };

  // --- language -----------------------------------------------------------------------

  var lang = document.documentElement.lang || "en";
  var _ = typeof window.gettext === "function" ? window.gettext : function (s) { return s; };
  var ngettext = typeof window.ngettext === "function" ? window.ngettext
    : function (one, many, n) { return n === 1 ? one : many; };
  function fmt(text, values) {
    if (typeof window.interpolate === "function") { return window.interpolate(text, values, !Array.isArray(values)); }
    return text.replace(/%\((\w+)\)s/g, function (m, k) { return values[k]; });
  }
  var numberFormat = new Intl.NumberFormat(lang);
  var timeFormat = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit", second: "2-digit" });
  var dateTimeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short" });
  var relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  function num(n) { return numberFormat.format(n); }
  function unit(n, name) {
    return new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "long" }).format(n);
  }

  var clockOffset = Number(root.dataset.serverNow) - Date.now(); // server clock minus ours
  var lastRefusal = null; // the code of the error frame that came before a refusing close
  var S = {
    phase: "connecting", ticket: null, aheadAtQueued: null, servedAtQueued: 0, serving: 0, waiting: null,
    rate: null, etaAtQueued: null, paused: false, positionAtJoin: null, updatedAt: null, redirectUrl: null
  };
  var ws = null, attempts = 0, timers = { reconnect: null, poll: null, ping: null, countdown: null, opening: null };
  var pendingChallenge = null, powRounds = 0;
  var polling = false, lastAnnounced = { text: "", at: 0, position: null };

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { var el = $(id); if (el && el.textContent !== String(text)) { el.textContent = text; } }
  function serverNow() { return Date.now() + clockOffset; }
  function clear(name) { if (timers[name]) { clearTimeout(timers[name]); timers[name] = null; } }
  function jitter(ms) { return ms / 2 + Math.random() * ms / 2; }

  // --- derived numbers ---------------------------------------------------------------

  function ahead() {
    if (S.aheadAtQueued === null) { return null; }
    return Math.max(0, S.aheadAtQueued - (S.serving - S.servedAtQueued));
  }

  function etaSeconds() {
    var a = ahead();
    if (a === null) { return null; }
    if (S.rate && S.rate > 0) { return (a + 1) / (S.rate / 60); }
    return S.etaAtQueued;
  }

  function duration(seconds) {
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) { return unit(minutes, "minute"); }
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    return unit(hours, "hour") + (rest ? " " + unit(rest, "minute") : "");
  }

  function etaWords(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) { return _("Any moment now"); }
    if (seconds < 60) { return _("Less than a minute"); }
    return fmt(_("About %(duration)s"), { duration: duration(seconds) });
  }

  function countdownText(ms) {
    if (ms <= 0) { return _("Opening now…"); }
    var total = Math.ceil(ms / 1000), days = Math.floor(total / 86400);
    var h = Math.floor((total % 86400) / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var clock = (h || days ? two(h) + ":" : "") + two(m) + ":" + two(s);
    return (days ? fmt(ngettext("%(days)s day", "%(days)s days", days), { days: num(days) }) + " " : "") + clock;
  }

  function countdownWords(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    if (total < 60) { return relative.format(total, "second"); }
    if (total < 3600) { return relative.format(Math.round(total / 60), "minute"); }
    if (total < 86400) { return relative.format(Math.round(total / 3600), "hour"); }
    return relative.format(Math.round(total / 86400), "day");
  }

  function rememberJoinPosition(position) {
    var key = "qms:" + cfg.eventId + ":" + S.ticket + ":joined-at";
    try {
      var stored = Number(window.localStorage.getItem(key));
      if (stored >= position) { S.positionAtJoin = stored; return; }
      window.localStorage.setItem(key, String(position));
    } catch (e) { /* storage disabled: keep it for this page only */ }
    if (S.positionAtJoin === null || S.positionAtJoin < position) { S.positionAtJoin = position; }
  }

  // --- rendering ---------------------------------------------------------------------

  function announce(text, force) {
    var now = Date.now();
    if (!force && (text === lastAnnounced.text || now - lastAnnounced.at < ANNOUNCE_EVERY_MS)) { return; }
    lastAnnounced.text = text; lastAnnounced.at = now;
    setText("wr-announcer", text);
  }

  function setPhase(phase) {
    var changed = S.phase !== phase;
    S.phase = phase;
    if (!changed) { return; }
    var views = root.querySelectorAll("[data-view]");
    for (var i = 0; i < views.length; i++) { views[i].hidden = views[i].dataset.view !== phase; }
    if (TERMINAL[phase] || phase === "prequeue") {
      var title = root.querySelector('[data-view="' + phase + '"] .view__title');
      if (title && TERMINAL[phase]) { title.focus({ preventScroll: true }); }
    }
  }

  function setConnection(kind, text) {
    var el = $("wr-connection");
    el.dataset.connection = kind;
    setText("wr-connection-text", text);
  }

  var PILL = { connecting: _("Connecting…"), checking: _("Checking…"), prequeue: _("Pre-queue"),
    opening: _("Sale open"), waiting: _("In line"), paused: _("Paused"), admitted: _("Your turn"),
    superseded: _("Open elsewhere"), reset: _("Queue reset"), left: _("Left"), closed: _("Closed"),
    notopen: _("Not open yet"),
    error: _("Problem") };

  function render() {
    var shown = S.phase === "waiting" && S.paused ? "paused" : S.phase;
    root.dataset.state = shown;
    var pill = $("wr-pill");
    pill.textContent = PILL[shown] || shown;
    pill.className = "pill pill--" + shown;
    var busy = S.paused && S.pausedReason === "site_busy"; // the health gate, not the organiser
    var notes = root.querySelectorAll("[data-paused-note]");
    for (var i = 0; i < notes.length; i++) { notes[i].hidden = !S.paused || busy; }
    var busyNotes = root.querySelectorAll("[data-busy-note]");
    for (var j = 0; j < busyNotes.length; j++) { busyNotes[j].hidden = !busy; }

    if (S.phase === "prequeue") { renderCountdown(); }
    if (S.phase === "waiting") { renderPlace(); }
    if (S.updatedAt) {
      var stamp = $("wr-updated");
      stamp.textContent = timeFormat.format(S.updatedAt);
      stamp.setAttribute("datetime", S.updatedAt.toISOString());
    }
  }

  function renderPlace() {
    var a = ahead();
    if (a === null) { return; }
    var position = a + 1;
    setText("wr-position", num(position));
    setText("wr-ahead", a === 0 ? _("Nobody — you are next") : num(a));
    setText("wr-waiting", S.waiting === null ? "–" : num(S.waiting));
    setText("wr-eta", S.paused ? _("Paused — waiting for admission to resume") : etaWords(etaSeconds()));
    var start = S.positionAtJoin || position;
    var percent = start <= 1 ? 100 : Math.round(100 * (start - position) / (start - 1));
    percent = Math.max(0, Math.min(100, percent));
    $("wr-progress-bar").style.width = Math.max(percent, 2) + "%";
    var bar = $("wr-progress");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", fmt(_("%(percent)s of the way to the front, from place %(start)s"), {
      percent: new Intl.NumberFormat(lang, { style: "percent" }).format(percent / 100), start: num(start) }));
    var sentence = S.paused
      ? fmt(_("Admission is paused. You keep your place: number %(position)s in line."), { position: num(position) })
      : fmt(_("You are number %(position)s in line. %(eta)s."), { position: num(position), eta: etaWords(etaSeconds()) });
    announce(sentence, position !== lastAnnounced.position && position <= 3);
    lastAnnounced.position = position;
  }

  function renderCountdown() {
    var remaining = cfg.saleStartsAt - serverNow();
    setText("wr-countdown", countdownText(remaining));
    clear("countdown");
    if (S.phase === "prequeue") { timers.countdown = setTimeout(render, 1000 - (serverNow() % 1000) + 20); }
  }

  // --- state changes -----------------------------------------------------------------

  function placeFrom(aheadNow, served, eta, waiting, paused) {
    S.aheadAtQueued = aheadNow;
    S.servedAtQueued = served;
    S.serving = served;
    S.etaAtQueued = eta;
    S.waiting = waiting;
    S.paused = !!paused;
    S.updatedAt = new Date();
    rememberJoinPosition(aheadNow + 1);
    setPhase("waiting");
    announce(S.paused ? _("You are in line. Admission is paused for now.") : _("You are in line."), true);
    render();
  }

  function enterPrequeue(waiting, paused, saleStartsAt) {
    if (saleStartsAt) { cfg.saleStartsAt = Date.parse(saleStartsAt); }
    S.waiting = waiting; S.paused = !!paused; S.updatedAt = new Date();
    if (S.phase !== "prequeue") {
      setPhase("prequeue");
      announce(fmt(_("You are in the pre-queue. The sale opens %(when)s; order is drawn at random at the opening."),
        { when: countdownWords(cfg.saleStartsAt - serverNow()) }), true);
    }
    render();
  }

  function admitted(redirectUrl, expiresAt) {
    stopEverything();
    if (S.phase === "admitted") { return; }
    var safe = /^https?:\/\//i.test(redirectUrl || "") ? redirectUrl : null;
    var link = $("wr-continue");
    if (safe) { link.href = safe; }
    if (expiresAt) {
      var expires = new Date(expiresAt), el = $("wr-expires");
      el.textContent = timeFormat.format(expires);
      el.setAttribute("datetime", expires.toISOString());
    }
    S.redirectUrl = safe;
    setPhase("admitted");
    setConnection("done", _("Admitted"));
    announce(_("It is your turn. Taking you to booking."), true);
    render();
    if (safe) { setTimeout(function () { window.location.assign(safe); }, REDIRECT_DELAY_MS); }
  }

  function finish(phase, connectionText, sentence) {
    stopEverything();
    setPhase(phase);
    setConnection("done", connectionText);
    announce(sentence, true);
    render();
  }

  // A join refused with 409 / close 4409: draining, or the pre-queue window has not opened yet.
  function refused(code) {
    if (code === "queue_not_open" && cfg.prequeueOpensAt) {
      var opensAt = new Date(cfg.prequeueOpensAt);
      setText("wr-opens-at", dateTimeFormat.format(opensAt));
      finish("notopen", _("Not open yet"), fmt(_("The queue opens at %(time)s."), { time: dateTimeFormat.format(opensAt) }));
      var wait = cfg.prequeueOpensAt - (Date.now() + clockOffset);
      setTimeout(function () { window.location.reload(); }, Math.max(1000, wait) + Math.random() * 3000);
      return;
    }
    finish("closed", _("Closed"), _("This queue is closed to new fans."));
  }

  function fail(detail, needsLogin) {
    setText("wr-error-detail", detail);
    $("wr-login").hidden = !needsLogin;
    $("wr-retry").hidden = !!needsLogin;
    finish("error", _("Disconnected"), detail);
  }

  function stopEverything() {
    clear("reconnect"); clear("poll"); clear("ping"); clear("opening");
    polling = false;
    if (ws) { var old = ws; ws = null; try { old.close(1000); } catch (e) { /* already closed */ } }
  }

  // --- messages ----------------------------------------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case "queued":
        attempts = 0;
        stopPolling();
        S.ticket = msg.ticket;
        if (msg.state === "prequeue") { enterPrequeue(msg.waiting, msg.paused, msg.sale_starts_at); }
        else { placeFrom(msg.ahead, msg.served, msg.eta_seconds, msg.waiting, msg.paused); }
        break;
      case "progress":
        if (typeof msg.at === "number") { clockOffset = msg.at * 1000 - Date.now(); }
        S.waiting = msg.waiting;
        S.paused = !!msg.paused;
        S.pausedReason = msg.paused_reason || null;
        S.rate = msg.rate_per_minute;
        S.serving = Math.max(S.serving, msg.serving);
        S.updatedAt = new Date();
        if (S.phase === "prequeue" && msg.sale_open) { learnPlaceAfterOpening(); }
        render();
        break;
      case "admitted":
        admitted(msg.redirect_url, msg.expires_at);
        break;
      case "paused":
      case "resumed":
        S.paused = msg.type === "paused";
        S.updatedAt = new Date();
        announce(S.paused ? _("Admission is paused. You keep your place.")
          : _("Admission resumed. Your place is moving again."), true);
        render();
        break;
      case "superseded":
        finish("superseded", _("Open elsewhere"), _("This queue is open on another device. Your place is kept."));
        break;
      case "reset":
        finish("reset", _("Disconnected"), _("The organiser reset the queue. You can join again."));
        break;
      case "left":
        finish("left", _("Disconnected"), _("You left the queue."));
        break;
      case "error":
        if (msg.challenge) { pendingChallenge = msg.challenge; } // close 4428 follows: solve it
        lastRefusal = msg.code;
        break;
      default:
        break; // pong, other error frames (a close with its code follows a refusal)
    }
  }

  function learnPlaceAfterOpening() {
    if (timers.opening) { return; }
    setPhase("opening");
    // Everyone in the pre-queue asks at once: spread the requests over a second and a half.
    timers.opening = setTimeout(function () {
      fetchStatus().then(function () { timers.opening = null; }, function () {
        timers.opening = null;
        if (ws) { ws.close(); } // fall back to a fresh connection's `queued`
      });
    }, Math.random() * 1500);
  }

  // --- the socket --------------------------------------------------------------------

  function connect() {
    stopEverything();
    if (TERMINAL[S.phase]) { setPhase("connecting"); render(); }
    setConnection("connecting", attempts ? _("Reconnecting") : _("Connecting"));
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var sock;
    try {
      sock = new WebSocket(scheme + window.location.host + cfg.wsPath);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = function () {
      if (sock !== ws) { return; }
      setConnection("live", _("Live"));
      timers.ping = setInterval(function () {
        if (sock.readyState === WebSocket.OPEN) { sock.send(JSON.stringify({ type: "ping" })); }
      }, PING_MS);
    };
    sock.onmessage = function (event) {
      if (sock !== ws) { return; }
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (event) {
      if (sock !== ws) { return; }
      ws = null;
      clearInterval(timers.ping); timers.ping = null;
      onClose(event.code);
    };
  }

  function onClose(code) {
    if (TERMINAL[S.phase]) { return; }
    switch (code) {
      case CLOSE.ADMITTED: fetchStatus().catch(scheduleReconnect); return; // the admitted frame was lost
      case CLOSE.LEFT: finish("left", _("Disconnected"), _("You left the queue.")); return;
      case CLOSE.SUPERSEDED:
        finish("superseded", _("Open elsewhere"), _("This queue is open on another device. Your place is kept.")); return;
      case CLOSE.RESET: finish("reset", _("Disconnected"), _("The organiser reset the queue. You can join again.")); return;
      case CLOSE.DRAINING: refused(lastRefusal); return;
      case CLOSE.UNAUTHENTICATED: fail(_("Your session has ended. Log in again to get back to your place."), true); return;
      case CLOSE.ORIGIN: fail(_("This address may not open the queue. Open the waiting room from the event's site."));
        return;
      case CLOSE.UNKNOWN_EVENT: fail(_("This event does not exist (any more).")); return;
      case CLOSE.POW_REQUIRED: proveAndJoin(pendingChallenge); return;
      default: scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    if (TERMINAL[S.phase] || timers.reconnect) { return; }
    attempts += 1;
    var delay = jitter(Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts - 1)));
    setConnection("reconnecting", fmt(_("Reconnecting %(when)s"),
      { when: relative.format(Math.max(1, Math.round(delay / 1000)), "second") }));
    timers.reconnect = setTimeout(function () { timers.reconnect = null; connect(); }, delay);
    if (attempts >= 3) { startPolling(); }
  }

  function reconnectNow() {
    if (TERMINAL[S.phase] || (ws && ws.readyState <= WebSocket.OPEN)) { return; }
    attempts = 0;
    connect();
  }

  // --- the HTTP fallback -------------------------------------------------------------

  function request(method, body) {
    var headers = { "Accept": "application/json", "X-CSRFToken": cfg.csrf };
    if (body) { headers["Content-Type"] = "application/json"; }
    return window.fetch(cfg.statusUrl, {
      method: method, credentials: "same-origin", cache: "no-store", headers: headers,
      body: body ? JSON.stringify(body) : undefined
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return { status: response.status, body: body };
      });
    });
  }

  function applyStatus(body) {
    if (body.state === "admitted" && body.admission) {
      admitted(body.admission.redirect_url, body.admission.expires_at);
    } else if (body.state === "prequeue") {
      S.ticket = body.ticket;
      enterPrequeue(body.waiting, body.paused, body.sale_starts_at);
    } else if (body.state === "waiting") {
      S.ticket = body.ticket;
      placeFrom(body.ahead, body.served, body.eta_seconds, body.waiting, body.paused);
    }
  }

  function fetchStatus() {
    return request("GET").then(function (result) {
      if (result.status === 404 && result.body.code === "not_in_queue") { return request("POST"); }
      return result;
    }).then(function (result) {
      if (result.status === 200 || result.status === 201) { applyStatus(result.body); return; }
      if (result.status === 428 && result.body.challenge) { stopPolling(); proveAndJoin(result.body.challenge); return; }
      if (result.status === 401 || result.status === 403) {
        fail(_("Your session has ended. Log in again to get back to your place."), true); return;
      }
      if (result.status === 409) { refused(result.body.code); return; }
      throw new Error("status " + result.status);
    });
  }

  function startPolling() {
    if (polling) { return; }
    polling = true;
    var poll = function () {
      if (!polling || TERMINAL[S.phase]) { return; }
      setConnection("polling", _("Live updates interrupted — checking every few seconds"));
      fetchStatus().catch(function () { /* try again next round */ }).then(function () {
        if (polling && !TERMINAL[S.phase]) { timers.poll = setTimeout(poll, jitter(POLL_MS * 2)); }
      });
    };
    poll();
  }

  function stopPolling() { polling = false; clear("poll"); }

  // --- proof of work -----------------------------------------------------------------

  function leadingZeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      return bits + Math.clz32(bytes[i]) - 24;
    }
    return bits;
  }

  /** The first counter c with SHA-256(challenge + ":" + c) starting with `difficulty` zero bits. */
  function solveChallenge(challenge, difficulty) {
    var encoder = new TextEncoder(), prefix = challenge + ":", next = 0;
    var digest = window.crypto && window.crypto.subtle
      ? function (text) { return window.crypto.subtle.digest("SHA-256", encoder.encode(text)); }
      : null;
    if (!digest) { return Promise.reject(new Error("WebCrypto is unavailable (the page needs HTTPS)")); }
    return new Promise(function (resolve, reject) {
      function batch() {
        var start = next, pending = [];
        for (var i = 0; i < POW_BATCH; i++) { pending.push(digest(prefix + (start + i))); }
        next += POW_BATCH;
        Promise.all(pending).then(function (digests) {
          for (var j = 0; j < digests.length; j++) {
            if (leadingZeroBits(new Uint8Array(digests[j])) >= difficulty) { resolve(String(start + j)); return; }
          }
          setTimeout(batch, 0); // yield: the page stays responsive while it works
        }, reject);
      }
      batch();
    });
  }
  window.qmsSolveChallenge = solveChallenge; // bench/pow_solve.py times it in Chromium

  function proveAndJoin(challenge) {
    pendingChallenge = null;
    if (!challenge || powRounds >= POW_MAX_ROUNDS) {
      fail(_("We could not check your browser. Try again.")); return;
    }
    powRounds += 1;
    stopEverything();
    setPhase("checking");
    setConnection("connecting", _("Checking your browser…"));
    announce(_("Checking your browser…"), true);
    render();
    solveChallenge(challenge.challenge, challenge.difficulty).then(function (solution) {
      return request("POST", { pow: { challenge: challenge.challenge, solution: solution } });
    }).then(function (result) {
      if (result.status === 428 && result.body.challenge) { proveAndJoin(result.body.challenge); return; }
      if (result.status === 409) { refused(result.body.code); return; }
      if (result.status !== 200 && result.status !== 201) { throw new Error("status " + result.status); }
      powRounds = 0;
      root.dataset.pow = "solved"; // for the curious (and the browser tests): this page did the work
      applyStatus(result.body);
      if (!TERMINAL[S.phase]) { connect(); } // the place exists now: the socket needs no solution
    }).catch(function (error) {
      fail(_("We could not check your browser. Try again.") + " (" + error.message + ")");
    });
  }

  // --- controls ----------------------------------------------------------------------

  $("wr-take-back").addEventListener("click", function () { attempts = 0; connect(); });
  $("wr-retry").addEventListener("click", function () { attempts = 0; powRounds = 0; connect(); });
  var again = root.querySelectorAll("[data-join-again]");
  for (var i = 0; i < again.length; i++) {
    again[i].addEventListener("click", function () { attempts = 0; powRounds = 0; connect(); });
  }
  $("wr-leave").addEventListener("click", function () {
    if (!window.confirm(_("Leave the queue? You will lose your place."))) { return; }
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "leave" })); return; }
    request("DELETE").then(function () { finish("left", _("Disconnected"), _("You left the queue.")); });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  window.addEventListener("online", reconnectNow);

  var saleTime = $("wr-sale-time"); // the server wrote UTC; the fan reads it in their own zone and language
  if (saleTime && isFinite(cfg.saleStartsAt)) { saleTime.textContent = dateTimeFormat.format(new Date(cfg.saleStartsAt)); }

  connect();
}());
