/*
 * QMS waiting room: follows the fan's place live over the WebSocket and falls back to polling
 * the HTTP status endpoint. Plain JavaScript, no dependencies, no build step.
 *
 * Protocol (queues/consumers.py, queues/notify.py): `queued` gives the place at connect;
 * each `progress` broadcast carries the serving watermark, from which the page derives
 * ahead = max(0, ahead_at_queued - (serving - served_at_queued)).
 */
(function () {
  "use strict";

  var root = document.getElementById("waiting-room");
  if (!root) { return; }

  var CLOSE = { ADMITTED: 4000, LEFT: 4001, SUPERSEDED: 4002, RESET: 4003, UNAUTHENTICATED: 4401,
    ORIGIN: 4403, UNKNOWN_EVENT: 4404, DRAINING: 4409 };
  var TERMINAL = { admitted: true, superseded: true, reset: true, left: true, closed: true, error: true };
  var PING_MS = 25000, POLL_MS = 5000, MAX_BACKOFF_MS = 30000, REDIRECT_DELAY_MS = 1200, ANNOUNCE_EVERY_MS = 20000;

  var cfg = {
    eventId: root.dataset.eventId,
    wsPath: root.dataset.wsPath,
    statusUrl: root.dataset.statusUrl,
    loginUrl: root.dataset.loginUrl,
    csrf: root.dataset.csrf,
    saleStartsAt: Date.parse(root.dataset.saleStartsAt)
  };

  var clockOffset = Number(root.dataset.serverNow) - Date.now(); // server clock minus ours
  var S = {
    phase: "connecting", ticket: null, aheadAtQueued: null, servedAtQueued: 0, serving: 0, waiting: null,
    rate: null, etaAtQueued: null, paused: false, positionAtJoin: null, updatedAt: null, redirectUrl: null
  };
  var ws = null, attempts = 0, timers = { reconnect: null, poll: null, ping: null, countdown: null, opening: null };
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

  function etaWords(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) { return "Any moment now"; }
    if (seconds < 60) { return "Less than a minute"; }
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) { return "About " + minutes + (minutes === 1 ? " minute" : " minutes"); }
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    return "About " + hours + (hours === 1 ? " hour" : " hours") +
      (rest ? " " + rest + (rest === 1 ? " minute" : " minutes") : "");
  }

  function countdownText(ms) {
    if (ms <= 0) { return "Opening now…"; }
    var total = Math.ceil(ms / 1000), days = Math.floor(total / 86400);
    var h = Math.floor((total % 86400) / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var clock = (h || days ? two(h) + ":" : "") + two(m) + ":" + two(s);
    return (days ? days + (days === 1 ? " day " : " days ") : "") + clock;
  }

  function countdownWords(ms) {
    var total = Math.max(0, Math.ceil(ms / 1000));
    if (total < 60) { return total + " seconds"; }
    return etaWords(total).replace("About ", "about ").replace("Less than a minute", "less than a minute");
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

  var PILL = { connecting: "Connecting…", prequeue: "Pre-queue", opening: "Sale open", waiting: "In line",
    paused: "Paused", admitted: "Your turn", superseded: "Open elsewhere", reset: "Queue reset", left: "Left",
    closed: "Closed", error: "Problem" };

  function render() {
    var shown = S.phase === "waiting" && S.paused ? "paused" : S.phase;
    root.dataset.state = shown;
    var pill = $("wr-pill");
    pill.textContent = PILL[shown] || shown;
    pill.className = "pill pill--" + shown;
    var notes = root.querySelectorAll("[data-paused-note]");
    for (var i = 0; i < notes.length; i++) { notes[i].hidden = !S.paused; }

    if (S.phase === "prequeue") { renderCountdown(); }
    if (S.phase === "waiting") { renderPlace(); }
    if (S.updatedAt) {
      var stamp = $("wr-updated");
      stamp.textContent = S.updatedAt.toLocaleTimeString();
      stamp.setAttribute("datetime", S.updatedAt.toISOString());
    }
  }

  function renderPlace() {
    var a = ahead();
    if (a === null) { return; }
    var position = a + 1;
    setText("wr-position", position.toLocaleString());
    setText("wr-ahead", a === 0 ? "Nobody — you are next" : a.toLocaleString());
    setText("wr-waiting", S.waiting === null ? "–" : S.waiting.toLocaleString());
    setText("wr-eta", S.paused ? "Paused — waiting for admission to resume" : etaWords(etaSeconds()));
    var start = S.positionAtJoin || position;
    var percent = start <= 1 ? 100 : Math.round(100 * (start - position) / (start - 1));
    percent = Math.max(0, Math.min(100, percent));
    $("wr-progress-bar").style.width = Math.max(percent, 2) + "%";
    var bar = $("wr-progress");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", percent + "% of the way to the front, from place " + start.toLocaleString());
    var sentence = S.paused
      ? "Admission is paused. You keep your place: number " + position + " in line."
      : "You are number " + position + " in line. " + etaWords(etaSeconds()) + ".";
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
    announce(S.paused ? "You are in line. Admission is paused for now." : "You are in line.", true);
    render();
  }

  function enterPrequeue(waiting, paused, saleStartsAt) {
    if (saleStartsAt) { cfg.saleStartsAt = Date.parse(saleStartsAt); }
    S.waiting = waiting; S.paused = !!paused; S.updatedAt = new Date();
    if (S.phase !== "prequeue") {
      setPhase("prequeue");
      announce("You are in the pre-queue. The sale opens in " +
        countdownWords(cfg.saleStartsAt - serverNow()) + "; order is drawn at random at the opening.", true);
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
      el.textContent = expires.toLocaleTimeString();
      el.setAttribute("datetime", expires.toISOString());
    }
    S.redirectUrl = safe;
    setPhase("admitted");
    setConnection("done", "Admitted");
    announce("It is your turn. Taking you to booking.", true);
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

  function fail(detail, needsLogin) {
    setText("wr-error-detail", detail);
    $("wr-login").hidden = !needsLogin;
    $("wr-retry").hidden = !!needsLogin;
    finish("error", "Disconnected", detail);
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
        announce(S.paused ? "Admission is paused. You keep your place." : "Admission resumed. Your place is moving again.",
          true);
        render();
        break;
      case "superseded":
        finish("superseded", "Open elsewhere", "This queue is open on another device. Your place is kept.");
        break;
      case "reset":
        finish("reset", "Disconnected", "The organiser reset the queue. You can join again.");
        break;
      case "left":
        finish("left", "Disconnected", "You left the queue.");
        break;
      default:
        break; // pong, error frames (a close with its code follows a refusal)
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
    setConnection("connecting", attempts ? "Reconnecting" : "Connecting");
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
      setConnection("live", "Live");
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
      case CLOSE.LEFT: finish("left", "Disconnected", "You left the queue."); return;
      case CLOSE.SUPERSEDED:
        finish("superseded", "Open elsewhere", "This queue is open on another device. Your place is kept."); return;
      case CLOSE.RESET: finish("reset", "Disconnected", "The organiser reset the queue. You can join again."); return;
      case CLOSE.DRAINING: finish("closed", "Closed", "This queue is closed to new fans."); return;
      case CLOSE.UNAUTHENTICATED: fail("Your session has ended. Log in again to get back to your place.", true); return;
      case CLOSE.ORIGIN: fail("This address may not open the queue. Open the waiting room from the event's site."); return;
      case CLOSE.UNKNOWN_EVENT: fail("This event does not exist (any more)."); return;
      default: scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    if (TERMINAL[S.phase] || timers.reconnect) { return; }
    attempts += 1;
    var delay = jitter(Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts - 1)));
    setConnection("reconnecting", "Reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s");
    timers.reconnect = setTimeout(function () { timers.reconnect = null; connect(); }, delay);
    if (attempts >= 3) { startPolling(); }
  }

  function reconnectNow() {
    if (TERMINAL[S.phase] || (ws && ws.readyState <= WebSocket.OPEN)) { return; }
    attempts = 0;
    connect();
  }

  // --- the HTTP fallback -------------------------------------------------------------

  function request(method) {
    return window.fetch(cfg.statusUrl, {
      method: method, credentials: "same-origin", cache: "no-store",
      headers: { "Accept": "application/json", "X-CSRFToken": cfg.csrf }
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
      if (result.status === 401 || result.status === 403) {
        fail("Your session has ended. Log in again to get back to your place.", true); return;
      }
      if (result.status === 409) { finish("closed", "Closed", "This queue is closed to new fans."); return; }
      throw new Error("status " + result.status);
    });
  }

  function startPolling() {
    if (polling) { return; }
    polling = true;
    var poll = function () {
      if (!polling || TERMINAL[S.phase]) { return; }
      setConnection("polling", "Live updates interrupted — checking every few seconds");
      fetchStatus().catch(function () { /* try again next round */ }).then(function () {
        if (polling && !TERMINAL[S.phase]) { timers.poll = setTimeout(poll, jitter(POLL_MS * 2)); }
      });
    };
    poll();
  }

  function stopPolling() { polling = false; clear("poll"); }

  // --- controls ----------------------------------------------------------------------

  $("wr-take-back").addEventListener("click", function () { attempts = 0; connect(); });
  $("wr-retry").addEventListener("click", function () { attempts = 0; connect(); });
  var again = root.querySelectorAll("[data-join-again]");
  for (var i = 0; i < again.length; i++) {
    again[i].addEventListener("click", function () { attempts = 0; connect(); });
  }
  $("wr-leave").addEventListener("click", function () {
    if (!window.confirm("Leave the queue? You will lose your place.")) { return; }
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "leave" })); return; }
    request("DELETE").then(function () { finish("left", "Disconnected", "You left the queue."); });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  window.addEventListener("online", reconnectNow);

  connect();
}());
