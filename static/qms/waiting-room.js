/*
 * QMS waiting room: follows the fan's place live over the WebSocket and falls back to polling
 * the HTTP status endpoint. Plain JavaScript, no dependencies, no build step.
 *
 * Protocol (docs/API.md): the close codes, message kinds and fan states come from the server
 * (queues/protocol.py, rendered into the page as JSON by the template), never repeated here; the
 * frames themselves are built in queues/realtime/messages.py and sent by queues/realtime/consumer.py.
 * `queued` gives the place at connect; in `fifo` order each `progress` broadcast carries the
 * serving watermark, from which the page derives ahead = max(0, ahead_at_queued - (serving -
 * served_at_queued)). In `random` order there is no place to derive: the page shows the server's
 * numbers (who is waiting, its expected wait) and no place number.
 *
 * Liveness: a progress broadcast arrives every tick, and the page pings on a timer; when no frame
 * answers a ping within its deadline, or the browser says it is offline, the connection is shown
 * as stale or offline (never "Live") and the page reconnects when it can, backing off after each
 * failure; after three it also polls the HTTP status endpoint until a socket holds again.
 *
 * Refused joins (close QUEUE_CLOSED or HTTP 409): a drain can be undone and a pre-queue window opens,
 * and nothing tells a page without a place; so the page tries again by itself (a draining queue with a
 * bounded backoff, a queue not open yet at its announced opening) and offers "Try again".
 *
 * Language: strings go through Django's JavaScript catalog (`/jsi18n/`, loaded first: gettext,
 * ngettext, interpolate); numbers, times and durations through Intl with the page's `lang`.
 *
 * Proof of work (queues/challenge.py): a fan without a place at an event that asks for it is
 * refused by the socket with close POW_REQUIRED and a challenge; the page finds a solution with
 * WebCrypto SHA-256 in batches (yielding between them), joins over HTTP with it, then reconnects.
 * One solve at a time: reconnect triggers (online, visibility) wait for it.
 *
 * The organiser's message (`announcement` frames, the status's `message`): shown as text, never as HTML, in
 * the page's language when the organiser wrote one for it; gone when cleared.
 */
(() => {
  "use strict";

  const root = document.getElementById("waiting-room");
  const protocolScript = document.getElementById("qms-protocol");
  if (!root || !protocolScript) { return; }

  const PROTOCOL = JSON.parse(protocolScript.textContent);
  const CLOSE = PROTOCOL.close, MSG = PROTOCOL.messages, STATE = PROTOCOL.states;
  // The page's own views (data-view); the fan's queue states above are only some of them.
  const TERMINAL = new Set(["admitted", "superseded", "reset", "left", "closed", "notopen", "error",
    "entryclosed", "code", "invite"]);
  const POW_BATCH = 512, POW_MAX_ROUNDS = 3;
  const PING_MS = 10000; // a ping this often; progress frames usually arrive every tick anyway
  const PONG_DEADLINE_MS = 5000; // no frame this long after a ping: the connection is stale
  const POLL_MS = 5000, MAX_BACKOFF_MS = 30000, REDIRECT_DELAY_MS = 1200, ANNOUNCE_EVERY_MS = 20000;
  // Joining again after a refusal: each wait (jittered, so refused fans do not return at once) and the
  // longest wait for an announced opening (the organiser may move it earlier).
  const REJOIN_BACKOFF_MS = [15000, 30000, 60000], MAX_OPENING_WAIT_MS = 10 * 60000;
  const LEFT_KEY = `qms:${root.dataset.eventId}:left`; // sessionStorage: this tab left the queue

  const cfg = {
    eventId: root.dataset.eventId,
    wsPath: root.dataset.wsPath,
    statusUrl: root.dataset.statusUrl,
    csrf: root.dataset.csrf,
    saleStartsAt: Date.parse(root.dataset.saleStartsAt),
    prequeueOpensAt: root.dataset.prequeueOpensAt ? Date.parse(root.dataset.prequeueOpensAt) : null,
    // The page's `?return=` on the event's protected site, validated by the server and ending in `qms_token=`:
    // an admitted fan goes there with the token appended (for the gate) instead of to the reservation URL.
    returnTo: root.dataset.returnTo || null,
    // Entry policy (docs/API.md "Entry policies"): the invitation's token from this page's URL, and the access
    // code the fan typed; both go with every join (socket URL and HTTP body) until the fan holds a place.
    entryPolicy: root.dataset.entryPolicy,
    enqueueToken: new URLSearchParams(window.location.search).get("enqueue_token"),
    accessCode: null
  };

  // --- language -----------------------------------------------------------------------

  const lang = document.documentElement.lang || "en";
  const _ = typeof window.gettext === "function" ? window.gettext : (s) => s;
  const ngettext = typeof window.ngettext === "function" ? window.ngettext : (one, many, n) => (n === 1 ? one : many);
  function fmt(text, values) {
    if (typeof window.interpolate === "function") { return window.interpolate(text, values, !Array.isArray(values)); }
    return text.replace(/%\((\w+)\)s/g, (m, k) => values[k]);
  }
  const numberFormat = new Intl.NumberFormat(lang);
  const timeFormat = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit", second: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "short" });
  const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const num = (n) => numberFormat.format(n);
  const unit = (n, name) => new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "long" }).format(n);

  let clockOffset = Number(root.dataset.serverNow) - Date.now(); // server clock minus ours
  let lastRefusal = null; // the error frame ({code, detail}) that came before a refusing close
  const S = {
    phase: "connecting", ticket: null, aheadAtQueued: null, servedAtQueued: 0, serving: 0, waiting: null,
    rate: null, etaAtQueued: null, paused: false, pausedReason: null, positionAtJoin: null,
    random: root.dataset.queueingMethod === "random", // until a progress says otherwise (the operator may change it)
    updatedAt: null, redirectUrl: null, saleOpen: false
  };
  let ws = null, attempts = 0, lastFrameAt = 0;
  const timers = { reconnect: null, poll: null, ping: null, pong: null, countdown: null, opening: null, rejoin: null };
  let pendingChallenge = null, powRounds = 0, solving = null; // `solving`: the one solve in progress
  let polling = false;
  let rejoinTries = 0, rejoining = false; // joins tried again after a refusal, and one in flight
  const lastAnnounced = { text: "", at: 0, position: null };

  const $ = (id) => document.getElementById(id);
  function setText(id, text) { const el = $(id); if (el && el.textContent !== String(text)) { el.textContent = text; } }
  const serverNow = () => Date.now() + clockOffset;
  function clear(name) { if (timers[name]) { clearTimeout(timers[name]); timers[name] = null; } }
  const jitter = (ms) => ms / 2 + Math.random() * ms / 2;
  const offline = () => navigator.onLine === false;

  function remember(key, value) {
    try {
      if (value === null) { window.sessionStorage.removeItem(key); } else { window.sessionStorage.setItem(key, value); }
    } catch (e) { /* storage disabled: this page only */ }
  }
  function recall(key) {
    try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
  }

  // --- derived numbers ---------------------------------------------------------------

  function ahead() {
    if (S.aheadAtQueued === null || S.random) { return null; } // a random draw has no place to count down
    return Math.max(0, S.aheadAtQueued - (S.serving - S.servedAtQueued));
  }

  function etaSeconds() {
    if (S.random) {
      // The server's expected wait for a draw among everyone waiting (docs/API.md): waiting / rate.
      if (S.rate && S.rate > 0 && S.waiting) { return S.waiting / (S.rate / 60); }
      return S.etaAtQueued;
    }
    const a = ahead();
    if (a === null) { return null; }
    if (S.rate && S.rate > 0) { return (a + 1) / (S.rate / 60); }
    return S.etaAtQueued;
  }

  function duration(seconds) {
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) { return unit(minutes, "minute"); }
    const hours = Math.floor(minutes / 60), rest = minutes % 60;
    return unit(hours, "hour") + (rest ? " " + unit(rest, "minute") : "");
  }

  function etaWords(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) { return _("Any moment now"); }
    if (seconds < 60) { return _("Less than a minute"); }
    return fmt(_("About %(duration)s"), { duration: duration(seconds) });
  }

  function countdownText(ms) {
    if (ms <= 0) { return _("Opening now…"); }
    const total = Math.ceil(ms / 1000), days = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const two = (n) => (n < 10 ? "0" : "") + n;
    const clock = (h || days ? two(h) + ":" : "") + two(m) + ":" + two(s);
    return (days ? fmt(ngettext("%(days)s day", "%(days)s days", days), { days: num(days) }) + " " : "") + clock;
  }

  function countdownWords(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    if (total < 60) { return relative.format(total, "second"); }
    if (total < 3600) { return relative.format(Math.round(total / 60), "minute"); }
    if (total < 86400) { return relative.format(Math.round(total / 3600), "hour"); }
    return relative.format(Math.round(total / 86400), "day");
  }

  function rememberJoinPosition(position) {
    const key = `qms:${cfg.eventId}:${S.ticket}:joined-at`;
    try {
      const stored = Number(window.localStorage.getItem(key));
      if (stored >= position) { S.positionAtJoin = stored; return; }
      window.localStorage.setItem(key, String(position));
    } catch (e) { /* storage disabled: keep it for this page only */ }
    if (S.positionAtJoin === null || S.positionAtJoin < position) { S.positionAtJoin = position; }
  }

  // --- rendering ---------------------------------------------------------------------

  function announce(text, force) {
    const now = Date.now();
    if (!force && (text === lastAnnounced.text || now - lastAnnounced.at < ANNOUNCE_EVERY_MS)) { return; }
    lastAnnounced.text = text; lastAnnounced.at = now;
    setText("wr-announcer", text);
  }

  function setPhase(phase) {
    const changed = S.phase !== phase;
    S.phase = phase;
    if (!changed) { return; }
    for (const view of root.querySelectorAll("[data-view]")) { view.hidden = view.dataset.view !== phase; }
    if (TERMINAL.has(phase)) {
      const title = root.querySelector(`[data-view="${phase}"] .view__title`);
      if (title) { title.focus({ preventScroll: true }); }
    }
  }

  // The indicator speaks of the link, the pill of the fan's place: they never say the same word.
  const CONNECTION = {
    connecting: () => (attempts ? _("Reconnecting") : _("Connecting")),
    live: () => _("Live"),
    stale: () => _("No updates — reconnecting"),
    offline: () => _("Offline — waiting for the network"),
    polling: () => _("Live updates interrupted — checking every few seconds"),
    checking: () => _("Connects after the check"),
    done: () => ""
  };

  function setConnection(kind, text) {
    const el = $("wr-connection");
    el.dataset.connection = kind;
    el.hidden = kind === "done"; // nothing is followed any more: the pill says where the fan stands
    setText("wr-connection-text", text === undefined ? CONNECTION[kind]() : text);
  }

  const PILL = {
    connecting: _("Finding your place"), checking: _("Browser check"), prequeue: _("Pre-queue"),
    opening: _("Sale open"), waiting: _("In line"), paused: _("Paused"), admitted: _("Your turn"),
    superseded: _("Open elsewhere"), reset: _("Queue reset"), left: _("Left"), closed: _("Closed"),
    notopen: _("Not open yet"), error: _("Problem"), entryclosed: _("Closed"), code: _("Access code"),
    invite: _("Invitation only")
  };

  function render() {
    const shown = S.phase === "waiting" && S.paused ? "paused" : S.phase;
    root.dataset.state = shown;
    root.dataset.method = S.random ? "random" : "ordered";
    const pill = $("wr-pill");
    pill.textContent = PILL[shown] || shown;
    pill.className = "pill pill--" + shown;
    const busy = S.paused && S.pausedReason === "site_busy"; // the health gate, not the organiser
    for (const note of root.querySelectorAll("[data-paused-note]")) { note.hidden = !S.paused || busy; }
    for (const note of root.querySelectorAll("[data-busy-note]")) { note.hidden = !busy; }
    for (const el of root.querySelectorAll("[data-ordered-only]")) { el.hidden = S.random; }
    for (const el of root.querySelectorAll("[data-random-only]")) { el.hidden = !S.random; }
    renderSaleLine();

    if (S.phase === "prequeue") { renderCountdown(); }
    if (S.phase === "waiting") { renderPlace(); }
    if (S.updatedAt) {
      const stamp = $("wr-updated");
      stamp.textContent = timeFormat.format(S.updatedAt);
      stamp.setAttribute("datetime", S.updatedAt.toISOString());
    }
  }

  // The head says "Sale opens" until the opening, then "Sale opened", without a reload.
  function renderSaleLine() {
    const open = S.saleOpen || (isFinite(cfg.saleStartsAt) && serverNow() >= cfg.saleStartsAt);
    setText("wr-sale-label", open ? _("Sale opened") : _("Sale opens"));
    const saleTime = $("wr-sale-time"); // the server wrote UTC; the fan reads it in their own zone and language
    if (saleTime && isFinite(cfg.saleStartsAt)) {
      setText("wr-sale-time", dateTimeFormat.format(new Date(cfg.saleStartsAt)));
      saleTime.setAttribute("datetime", new Date(cfg.saleStartsAt).toISOString());
    }
    clear("countdown");
    if (!open && !TERMINAL.has(S.phase)) {
      // Wake at the next whole second (the pre-queue countdown) or at the opening, whichever is first.
      const toOpening = cfg.saleStartsAt - serverNow() + 20;
      const next = S.phase === "prequeue" ? Math.min(1000 - (serverNow() % 1000) + 20, toOpening) : toOpening;
      timers.countdown = setTimeout(render, Math.max(20, Math.min(next, 2 ** 31 - 1)));
    }
  }

  function renderPlace() {
    setText("wr-waiting", S.waiting === null ? "–" : num(S.waiting));
    setText("wr-eta", S.paused ? _("Paused — waiting for admission to resume") : etaWords(etaSeconds()));
    if (S.random) {
      announce(S.paused ? _("Admission is paused. You keep your chance in the draw.")
        : fmt(_("Fans are let in by random draw. %(eta)s."), { eta: etaWords(etaSeconds()) }));
      return;
    }
    const a = ahead();
    if (a === null) { return; }
    const position = a + 1;
    setText("wr-position", num(position));
    setText("wr-ahead", a === 0 ? _("Nobody — you are next") : num(a));
    const start = S.positionAtJoin || position;
    let percent = start <= 1 ? 100 : Math.round(100 * (start - position) / (start - 1));
    percent = Math.max(0, Math.min(100, percent));
    $("wr-progress-bar").style.width = Math.max(percent, 2) + "%";
    const bar = $("wr-progress");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", fmt(_("%(percent)s of the way to the front, from place %(start)s"), {
      percent: new Intl.NumberFormat(lang, { style: "percent" }).format(percent / 100), start: num(start) }));
    const sentence = S.paused
      ? fmt(_("Admission is paused. You keep your place: number %(position)s in line."), { position: num(position) })
      : fmt(_("You are number %(position)s in line. %(eta)s."), { position: num(position), eta: etaWords(etaSeconds()) });
    announce(sentence, position !== lastAnnounced.position && position <= 3);
    lastAnnounced.position = position;
  }

  function renderCountdown() {
    setText("wr-countdown", countdownText(cfg.saleStartsAt - serverNow()));
  }

  // The organiser's words in the page's language if they wrote them, else their plain text; null: no message.
  function crowdText(message) {
    if (!message || !message.text) { return null; }
    const translations = message.translations || {};
    return translations[lang] || translations[lang.split("-")[0]] || message.text;
  }

  function showCrowdMessage(message) {
    const text = crowdText(message);
    setText("wr-crowd-text", text || ""); // textContent: markup in a message is shown as typed
    $("wr-crowd").hidden = !text;
  }

  // --- state changes -----------------------------------------------------------------

  function placeFrom(place) {
    S.aheadAtQueued = place.ahead;
    S.servedAtQueued = place.served;
    S.serving = place.served;
    S.etaAtQueued = place.eta_seconds;
    S.waiting = place.waiting;
    setPaused(place.paused);
    S.updatedAt = new Date();
    S.saleOpen = true;
    if (!S.random) { rememberJoinPosition(place.ahead + 1); }
    const joined = S.phase !== "waiting";
    setPhase("waiting");
    // Only on arriving: a status pulled again (a reconnect, a poll) must not talk over the place's news.
    if (joined) { announce(S.paused ? _("You are in line. Admission is paused for now.") : _("You are in line."), true); }
    render();
  }

  // `paused` alone says nothing about why: an organiser's pause unless a progress says otherwise.
  function setPaused(paused, reason) {
    S.paused = !!paused;
    S.pausedReason = S.paused ? (reason !== undefined ? reason : S.pausedReason || "operator") : null;
  }

  function enterPrequeue(place) {
    if (place.sale_starts_at) { cfg.saleStartsAt = Date.parse(place.sale_starts_at); }
    S.waiting = place.waiting; setPaused(place.paused); S.updatedAt = new Date();
    if (S.phase !== "prequeue") {
      setPhase("prequeue");
      announce(fmt(_("You are in the pre-queue. The sale opens %(when)s; order is drawn at random at the opening."),
        { when: countdownWords(cfg.saleStartsAt - serverNow()) }), true);
    }
    render();
  }

  // The reservation URL may be absolute (another service) or relative to this site (the demo desk).
  function safeRedirect(url) {
    if (!url) { return null; }
    try {
      const target = new URL(url, window.location.href);
      return target.protocol === "https:" || target.protocol === "http:" ? target.href : null;
    } catch (e) { return null; }
  }

  function admitted(redirectUrl, expiresAt, token) {
    stopEverything();
    if (S.phase === "admitted") { return; }
    const safe = safeRedirect(cfg.returnTo && token ? cfg.returnTo + encodeURIComponent(token) : redirectUrl);
    if (safe) { $("wr-continue").href = safe; }
    if (expiresAt) {
      const expires = new Date(expiresAt), el = $("wr-expires");
      el.textContent = timeFormat.format(expires);
      el.setAttribute("datetime", expires.toISOString());
    }
    S.redirectUrl = safe;
    setPhase("admitted");
    setConnection("done");
    announce(_("It is your turn. Taking you to booking."), true);
    render();
    if (safe) { setTimeout(() => window.location.assign(safe), REDIRECT_DELAY_MS); }
  }

  function finish(phase, sentence) {
    stopEverything();
    setPhase(phase);
    setConnection("done");
    announce(sentence, true);
    render();
  }

  function hasLeft() {
    remember(LEFT_KEY, "1"); // a reload shows "you left" instead of joining again at the back
    finish("left", _("You left the queue."));
  }

  // A join refused with QUEUE_CLOSED ({code, detail} of the socket's error frame or the 409 body): draining,
  // or the pre-queue window has not opened yet. Both may change without a word to this page, which holds no
  // place: show the refusal, and try again by itself.
  // --- entry policy: invitation token, access code, closed sale ---------------------------

  function entryCredentials() {
    const credentials = {};
    if (cfg.enqueueToken) { credentials.enqueue_token = cfg.enqueueToken; }
    if (cfg.accessCode) { credentials.access_code = cfg.accessCode; }
    return credentials;
  }

  function isEntryRefusal(body) {
    const code = body && typeof body.code === "string" ? body.code : "";
    return code === "entry_closed" || code.startsWith("enqueue_token_") || code.startsWith("access_code_") ||
      code.startsWith("entry_attempts_");
  }

  // Too many wrong codes or invitations (queues/entry_guessing.py): nothing is checked for `retry_after` seconds.
  function lockWords(refusal) {
    const minutes = Math.max(1, Math.ceil((Number(refusal.retry_after) || 60) / 60));
    const text = refusal.code === "entry_attempts_address_locked"
      ? ngettext("Too many failed attempts to join from your network. Please try again in %(minutes)s minute.",
        "Too many failed attempts to join from your network. Please try again in %(minutes)s minutes.", minutes)
      : ngettext("Too many failed attempts to join. Please try again in %(minutes)s minute.",
        "Too many failed attempts to join. Please try again in %(minutes)s minutes.", minutes);
    return fmt(text, { minutes: num(minutes) });
  }

  const INVITE_WORDS = {
    enqueue_token_required: () => _("This queue is by invitation only. Open it from the link the ticket site sent you."),
    enqueue_token_expired: () => _("Your invitation link has expired. Get a new one from the ticket site."),
    enqueue_token_used: () => _("This invitation link was already used to join the queue."),
    enqueue_token_wrong_user: () => _("This invitation link is for another account. Log in with the account it was sent to.")
  };
  const CODE_WORDS = {
    access_code_invalid: () => _("This code is not valid for this sale. Check it and try again."),
    access_code_used: () => _("This code was already used by someone else."),
    access_code_revoked: () => _("This code was withdrawn by the organiser.")
  };

  // The join was refused by the event's entry policy ({code, detail, message?}, a socket's error frame or an
  // HTTP body): the page holds no place; it says why and waits for the fan.
  function entryRefused(refusal) {
    const code = refusal ? refusal.code : "";
    if (code === "entry_closed") {
      setText("wr-closed-message", refusal.message || _("The organiser has closed this queue for now. Nobody can join at the moment."));
      finish("entryclosed", _("This sale is closed."));
    } else if (code.startsWith("access_code_") || (code.startsWith("entry_attempts_") && cfg.entryPolicy === "codes")) {
      cfg.accessCode = null;
      const words = code.startsWith("entry_attempts_") ? () => lockWords(refusal) : CODE_WORDS[code];
      const note = $("wr-code-error");
      note.hidden = !words;
      setText("wr-code-error", words ? words() : "");
      finish("code", words ? words() : _("Enter your access code to join the queue."));
      $("wr-code").focus();
    } else {
      const words = code.startsWith("entry_attempts_") ? () => lockWords(refusal)
        : INVITE_WORDS[code] || (() => _("This invitation link is not valid for this queue."));
      setText("wr-invite-detail", words());
      finish("invite", words());
    }
  }

  async function joinWithCode(event) {
    event.preventDefault();
    const code = $("wr-code").value.trim();
    if (!code) { $("wr-code").focus(); return; }
    cfg.accessCode = code;
    const button = $("wr-code-submit");
    button.disabled = true;
    setConnection("connecting");
    let result;
    try {
      result = await request("POST");
    } catch (e) {
      result = null;
    } finally {
      button.disabled = false;
    }
    if (!result) { fail(_("We could not reach the queue. Check your connection and try again.")); return; }
    if (result.status === 200 || result.status === 201) {
      S.phase = "connecting"; // leave the form: the place exists now, the socket follows it
      applyStatus(result.body);
      if (!TERMINAL.has(S.phase)) { connect(); }
      return;
    }
    if (result.status === 428 && result.body.challenge) { proveAndJoin(result.body.challenge); return; }
    if (isEntryRefusal(result.body)) { entryRefused(result.body); return; }
    if (result.status === 409) { refused(result.body); return; }
    if (result.status === 401 || result.status === 403) {
      fail(_("Your session has ended. Log in again to get back to your place."), true); return;
    }
    fail(_("We could not reach the queue. Check your connection and try again."));
  }

  function refused(refusal) {
    const code = refusal ? refusal.code : null;
    const opensAt = code === "queue_not_open" ? openingTime(refusal) : null;
    if (opensAt) {
      const when = dateTimeFormat.format(new Date(opensAt));
      setText("wr-opens-at", when);
      showRefusal("notopen", fmt(_("The queue opens at %(time)s."), { time: when }));
      const wait = opensAt - serverNow();
      // Everyone waiting for the opening arrives then: spread them over three seconds.
      scheduleRejoin(wait > 0 ? Math.min(wait, MAX_OPENING_WAIT_MS) + Math.random() * 3000 : nextRejoinDelay());
      return;
    }
    showRefusal("closed", _("This queue is closed to new fans."));
    scheduleRejoin(nextRejoinDelay());
  }

  // The refusal's `opens_at` is current; the page's data attribute is as old as the page.
  function openingTime(refusal) {
    const parsed = typeof refusal.opens_at === "string" ? Date.parse(refusal.opens_at) : NaN;
    return isFinite(parsed) ? parsed : cfg.prequeueOpensAt;
  }

  function showRefusal(phase, sentence) {
    if (S.phase === phase) { stopEverything(); return; } // refused again: said already, keep the focus where it is
    finish(phase, sentence);
  }

  function nextRejoinDelay() {
    const wait = REJOIN_BACKOFF_MS[Math.min(rejoinTries, REJOIN_BACKOFF_MS.length - 1)];
    rejoinTries += 1;
    return jitter(wait);
  }

  function scheduleRejoin(delay) {
    clear("rejoin");
    timers.rejoin = setTimeout(rejoin, Math.max(1000, Math.min(delay, 2 ** 31 - 1)));
    const at = new Date(Date.now() + delay);
    const when = delay > 12 * 3600000 ? dateTimeFormat.format(at) : timeFormat.format(at);
    setRetryNote(fmt(_("This page tries again by itself at %(time)s."), { time: when }));
  }

  function setRetryNote(text) {
    for (const note of root.querySelectorAll("[data-retry-note]")) { note.textContent = text; }
  }

  // Join again over HTTP (the closed view stays until it works); the socket follows a place.
  async function rejoin() {
    clear("rejoin");
    if (rejoining || (S.phase !== "closed" && S.phase !== "notopen")) { return; }
    rejoining = true;
    setRetryNote(_("Trying again…"));
    for (const button of root.querySelectorAll("[data-retry-join]")) { button.disabled = true; }
    try {
      await fetchStatus(); // a 409 comes back through refused(), which schedules the next try
    } catch (e) {
      scheduleRejoin(nextRejoinDelay()); // the network: later
    } finally {
      rejoining = false;
      for (const button of root.querySelectorAll("[data-retry-join]")) { button.disabled = false; }
    }
    if (!TERMINAL.has(S.phase)) { rejoinTries = 0; connect(); }
  }

  function fail(detail, needsLogin) {
    setText("wr-error-detail", detail);
    $("wr-login").hidden = !needsLogin;
    $("wr-retry").hidden = !!needsLogin;
    finish("error", detail);
  }

  function dropSocket() {
    clear("ping"); clear("pong");
    if (!ws) { return; }
    const old = ws;
    ws = null;
    old.onopen = old.onmessage = old.onclose = null; // whatever it says later is not this page's business
    try { old.close(1000); } catch (e) { /* already closed */ }
  }

  function stopEverything() {
    clear("reconnect"); clear("poll"); clear("opening"); clear("rejoin");
    polling = false;
    dropSocket();
  }

  // --- messages ----------------------------------------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case MSG.QUEUED:
        attempts = 0;
        stopPolling();
        S.ticket = msg.ticket;
        tellPlace(msg);
        if (msg.state === STATE.PREQUEUE) { enterPrequeue(msg); } else { placeFrom(msg); }
        break;
      case MSG.PROGRESS:
        if (typeof msg.at === "number") { clockOffset = msg.at * 1000 - Date.now(); }
        S.waiting = msg.waiting;
        setPaused(msg.paused, msg.paused_reason || null);
        S.rate = msg.rate_per_minute;
        S.random = msg.queueing_method === "random";
        S.serving = Math.max(S.serving, msg.serving);
        S.updatedAt = new Date();
        if (msg.sale_open) { S.saleOpen = true; }
        if (S.phase === "prequeue" && msg.sale_open) { learnPlaceAfterOpening(); }
        render();
        break;
      case MSG.ADMITTED:
        admitted(msg.redirect_url, msg.expires_at, msg.token);
        break;
      case MSG.PAUSED:
      case MSG.RESUMED:
        setPaused(msg.type === MSG.PAUSED, msg.type === MSG.PAUSED ? "operator" : null);
        S.updatedAt = new Date();
        announce(S.paused ? _("Admission is paused. You keep your place.")
          : _("Admission resumed. Your place is moving again."), true);
        render();
        break;
      case MSG.ANNOUNCEMENT:
        showCrowdMessage(msg.message);
        break;
      case MSG.SUPERSEDED:
        finish("superseded", _("This queue is open on another device. Your place is kept."));
        break;
      case MSG.RESET:
        finish("reset", _("The organiser reset the queue. You can join again."));
        break;
      case MSG.LEFT:
        hasLeft();
        break;
      case MSG.ERROR:
        if (msg.challenge) { pendingChallenge = msg.challenge; } // close POW_REQUIRED follows: solve it
        lastRefusal = { code: msg.code, detail: msg.detail, retry_after: msg.retry_after };
        break;
      default:
        break; // pong (its arrival is what counts), other error frames
    }
  }

  function learnPlaceAfterOpening() {
    if (timers.opening) { return; }
    setPhase("opening");
    // Everyone in the pre-queue asks at once: spread the requests over a second and a half.
    timers.opening = setTimeout(async () => {
      try {
        await fetchStatus();
      } catch (e) {
        if (ws) { dropSocket(); scheduleReconnect(); } // fall back to a fresh connection's `queued`
      } finally {
        timers.opening = null;
      }
    }, Math.random() * 1500);
  }

  // --- the socket --------------------------------------------------------------------

  function connect() {
    if (solving) { return; } // the solve reconnects when it is done
    stopEverything();
    if (TERMINAL.has(S.phase)) { setPhase("connecting"); render(); }
    if (offline()) { setConnection("offline"); return; } // the `online` event reconnects
    setConnection("connecting");
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    let sock;
    try {
      const query = cfg.enqueueToken ? "?" + new URLSearchParams({ enqueue_token: cfg.enqueueToken }) : "";
      sock = new WebSocket(scheme + window.location.host + cfg.wsPath + query);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => { // "Live" only once a frame arrives: the server sends `queued` at once
      lastFrameAt = Date.now();
      heartbeat(sock);
    };
    sock.onmessage = (event) => {
      lastFrameAt = Date.now();
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      // A refusal's error frame comes before its close: only a frame of a held place means "Live".
      if (msg.type !== MSG.ERROR && $("wr-connection").dataset.connection !== "live") { setConnection("live"); }
      handle(msg);
    };
    sock.onclose = (event) => {
      ws = null;
      clear("ping"); clear("pong");
      onClose(event.code);
    };
  }

  // Ping, and give the answer (or any frame) a deadline: a socket can look open long after the
  // network under it is gone, and the page must not claim to be live then.
  function heartbeat(sock) {
    clear("ping");
    timers.ping = setTimeout(() => {
      if (sock !== ws) { return; }
      const sentAt = Date.now();
      try { sock.send(JSON.stringify({ type: "ping" })); } catch (e) { /* the deadline decides */ }
      clear("pong");
      timers.pong = setTimeout(() => {
        if (sock !== ws) { return; }
        if (lastFrameAt >= sentAt) { heartbeat(sock); return; }
        dropSocket();
        setConnection("stale");
        scheduleReconnect();
      }, PONG_DEADLINE_MS);
    }, PING_MS);
  }

  function onClose(code) {
    if (TERMINAL.has(S.phase)) { return; }
    switch (code) {
      case CLOSE.ADMITTED: fetchStatus().catch(scheduleReconnect); return; // the admitted frame was lost
      case CLOSE.LEFT: hasLeft(); return;
      case CLOSE.SUPERSEDED: finish("superseded", _("This queue is open on another device. Your place is kept.")); return;
      case CLOSE.RESET: finish("reset", _("The organiser reset the queue. You can join again.")); return;
      case CLOSE.QUEUE_CLOSED: refused(lastRefusal); return;
      case CLOSE.ENTRY_REFUSED: entryRefused(lastRefusal); return;
      case CLOSE.NOT_AUTHENTICATED: fail(_("Your session has ended. Log in again to get back to your place."), true); return;
      case CLOSE.ORIGIN_REFUSED: fail(_("This address may not open the queue. Open the waiting room from the event's site."));
        return;
      case CLOSE.UNKNOWN_EVENT: fail(_("This event does not exist (any more).")); return;
      case CLOSE.POW_REQUIRED: proveAndJoin(pendingChallenge); return;
      default: scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    if (TERMINAL.has(S.phase) || timers.reconnect || solving) { return; }
    if (offline()) { setConnection("offline"); return; } // the `online` event reconnects
    attempts += 1;
    const delay = jitter(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempts - 1)));
    if ($("wr-connection").dataset.connection !== "stale") {
      setConnection("reconnecting", fmt(_("Reconnecting %(when)s"),
        { when: relative.format(Math.max(1, Math.round(delay / 1000)), "second") }));
    }
    timers.reconnect = setTimeout(() => { timers.reconnect = null; connect(); }, delay);
    if (attempts >= 3) { startPolling(); }
  }

  function reconnectNow() {
    if (TERMINAL.has(S.phase) || solving || (ws && ws.readyState <= WebSocket.OPEN)) { return; }
    attempts = 0;
    connect();
  }

  function wentOffline() {
    if (TERMINAL.has(S.phase) || solving) { return; }
    stopEverything();
    setConnection("offline");
  }

  // --- the HTTP fallback -------------------------------------------------------------

  async function request(method, body) {
    if (method === "POST") { body = Object.assign(entryCredentials(), body || {}); }
    const headers = { "Accept": "application/json", "X-CSRFToken": cfg.csrf };
    if (body) { headers["Content-Type"] = "application/json"; }
    const response = await window.fetch(cfg.statusUrl, {
      method, credentials: "same-origin", cache: "no-store", headers,
      body: body ? JSON.stringify(body) : undefined
    });
    let data = {};
    try { data = await response.json(); } catch (e) { /* 204, or not JSON */ }
    return { status: response.status, body: data };
  }

  // draw-check.js offers "Check the draw" to a fan drawn from the pre-queue: the place (frame or status) says so.
  function tellPlace(place) {
    root.dispatchEvent(new CustomEvent("qms:place", {
      detail: { state: place.state, ticket: place.ticket,
        drawRank: typeof place.draw_rank === "number" ? place.draw_rank : null } }));
  }

  function applyStatus(body) {
    if ("message" in body) { showCrowdMessage(body.message); }
    tellPlace(body);
    if (body.state === STATE.ADMITTED && body.admission) {
      admitted(body.admission.redirect_url, body.admission.expires_at, body.admission.token);
    } else if (body.state === STATE.PREQUEUE) {
      S.ticket = body.ticket;
      enterPrequeue(body);
    } else if (body.state === STATE.WAITING) {
      S.ticket = body.ticket;
      placeFrom(body);
    }
  }

  async function fetchStatus() {
    let result = await request("GET");
    if (result.status === 404 && result.body.code === "not_in_queue") { result = await request("POST"); }
    if (result.status === 200 || result.status === 201) { applyStatus(result.body); return; }
    if (result.status === 428 && result.body.challenge) { stopPolling(); proveAndJoin(result.body.challenge); return; }
    if (isEntryRefusal(result.body)) { stopPolling(); entryRefused(result.body); return; }
    if (result.status === 401 || result.status === 403) {
      fail(_("Your session has ended. Log in again to get back to your place."), true); return;
    }
    if (result.status === 409) { refused(result.body); return; }
    throw new Error("status " + result.status);
  }

  function startPolling() {
    if (polling) { return; }
    polling = true;
    const poll = async () => {
      if (!polling || TERMINAL.has(S.phase)) { return; }
      if (!offline()) { setConnection("polling"); }
      try { await fetchStatus(); } catch (e) { /* try again next round */ }
      if (polling && !TERMINAL.has(S.phase)) { timers.poll = setTimeout(poll, jitter(POLL_MS * 2)); }
    };
    poll();
  }

  function stopPolling() { polling = false; clear("poll"); }

  // --- proof of work -----------------------------------------------------------------

  function leadingZeroBits(bytes) {
    let bits = 0;
    for (const byte of bytes) {
      if (byte === 0) { bits += 8; continue; }
      return bits + Math.clz32(byte) - 24;
    }
    return bits;
  }

  /** The first counter c with SHA-256(challenge + ":" + c) starting with `difficulty` zero bits. */
  async function solveChallenge(challenge, difficulty) {
    if (!(window.crypto && window.crypto.subtle)) { throw new Error("WebCrypto is unavailable (the page needs HTTPS)"); }
    const encoder = new TextEncoder(), prefix = challenge + ":";
    for (let start = 0; ; start += POW_BATCH) {
      const pending = [];
      for (let i = 0; i < POW_BATCH; i++) {
        pending.push(window.crypto.subtle.digest("SHA-256", encoder.encode(prefix + (start + i))));
      }
      const digests = await Promise.all(pending);
      for (let j = 0; j < digests.length; j++) {
        if (leadingZeroBits(new Uint8Array(digests[j])) >= difficulty) { return String(start + j); }
      }
      await new Promise((resolve) => setTimeout(resolve, 0)); // yield: the page stays responsive while it works
    }
  }
  window.qmsSolveChallenge = solveChallenge; // bench/pow_solve.py times it in Chromium

  function proveAndJoin(challenge) {
    pendingChallenge = null;
    if (solving) { return solving; } // one solve at a time; it joins and reconnects when done
    if (!challenge || powRounds >= POW_MAX_ROUNDS) {
      fail(_("We could not check your browser. Try again.")); return null;
    }
    powRounds += 1;
    root.dataset.powChecks = String(Number(root.dataset.powChecks || 0) + 1); // solves started (browser tests)
    stopEverything();
    setPhase("checking");
    setConnection("checking");
    announce(_("Checking your browser…"), true);
    render();
    solving = solveAndJoin(challenge);
    return solving;
  }

  async function solveAndJoin(challenge) {
    let result;
    try {
      const solution = await solveChallenge(challenge.challenge, challenge.difficulty);
      result = await request("POST", { pow: { challenge: challenge.challenge, solution } });
    } catch (error) {
      solving = null;
      fail(_("We could not check your browser. Try again.") + " (" + error.message + ")");
      return;
    }
    solving = null;
    if (result.status === 428 && result.body.challenge) { proveAndJoin(result.body.challenge); return; }
    if (isEntryRefusal(result.body)) { entryRefused(result.body); return; }
    if (result.status === 409) { refused(result.body); return; }
    if (result.status !== 200 && result.status !== 201) {
      fail(_("We could not check your browser. Try again.") + " (status " + result.status + ")"); return;
    }
    powRounds = 0;
    root.dataset.pow = "solved"; // for the curious (and the browser tests): this page did the work
    applyStatus(result.body);
    if (!TERMINAL.has(S.phase)) { connect(); } // the place exists now: the socket needs no solution
  }

  // --- controls ----------------------------------------------------------------------

  function joinAgain() {
    remember(LEFT_KEY, null);
    attempts = 0; powRounds = 0;
    connect();
  }

  async function leave() {
    if (!window.confirm(_("Leave the queue? You will lose your place."))) { return; }
    const note = $("wr-leave-error");
    note.hidden = true;
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "leave" })); return; }
    let result;
    try {
      result = await request("DELETE");
    } catch (e) {
      result = null; // the network: the place is still held, say so
    }
    if (result && (result.status === 204 || result.status === 200
        || (result.status === 404 && result.body.code === "not_in_queue"))) {
      hasLeft(); return;
    }
    if (result && (result.status === 401 || result.status === 403)) {
      fail(_("Your session has ended. Log in again to get back to your place."), true); return;
    }
    note.hidden = false;
    setText("wr-leave-error", _("We could not take you out of the queue: check your connection and try again. You still hold your place."));
  }

  $("wr-take-back").addEventListener("click", () => { attempts = 0; connect(); });
  $("wr-retry").addEventListener("click", () => { attempts = 0; powRounds = 0; connect(); });
  for (const button of root.querySelectorAll("[data-join-again]")) { button.addEventListener("click", joinAgain); }
  for (const button of root.querySelectorAll("[data-retry-join]")) { button.addEventListener("click", rejoin); }
  $("wr-leave").addEventListener("click", leave);
  $("wr-code-form").addEventListener("submit", joinWithCode);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", wentOffline);

  render();
  if (cfg.entryPolicy === "reject") {
    finish("entryclosed", _("This sale is closed.")); // the server wrote the organiser's text: nobody joins
  } else if (recall(LEFT_KEY)) {
    // This tab left the queue: a reload must not join again at the back without the fan asking.
    finish("left", _("You left the queue."));
  } else {
    connect();
  }
})();
