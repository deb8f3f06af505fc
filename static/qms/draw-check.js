/*
 * "Check the draw" on the waiting-room page (issue 19; the scheme in docs/ARCHITECTURE.md "The provably fair
 * draw", in plain words on /events/<id>/draw/). After the opening, a fan drawn from the pre-queue recomputes in
 * the browser, with WebCrypto, what the server claims, trusting only the published numbers:
 *   - the revealed seed hashes (SHA-256) to the published commitment, and to the one this browser was shown
 *     before the opening, when it was shown one (remembered in localStorage);
 *   - the fan's own key, the first 8 bytes of HMAC-SHA256(seed, "<event id>:<user id>"), is in the published list,
 *     which holds as many fans as were drawn;
 *   - the rank that key gives in the list ordered by key (as the server orders: the 64-bit number / 2**64, a
 *     double) then ticket equals the place the server gave the fan at the opening (the status's `draw_rank`).
 * waiting-room.js tells this script the fan's place with a `qms:place` event on the page's root; the script
 * loads first, so it hears the first one.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const root = $("waiting-room"), box = $("wr-draw");
  if (!root || !box || !$("qms-protocol")) { return; }

  const cfg = { eventId: root.dataset.eventId, userId: box.dataset.userId, drawUrl: box.dataset.drawUrl };
  const SEEN_KEY = `qms:${cfg.eventId}:commitment`; // the commitment this browser was shown before the opening
  const PREQUEUE_KEY = `qms:${cfg.eventId}:prequeue-ticket`; // the ticket this browser held in the pre-queue
  const PREQUEUE = JSON.parse($("qms-protocol").textContent).states.PREQUEUE;
  const lang = document.documentElement.lang || "en";
  const _ = typeof window.gettext === "function" ? window.gettext : (s) => s;
  function fmt(text, values) {
    if (typeof window.interpolate === "function") { return window.interpolate(text, values, true); }
    return text.replace(/%\((\w+)\)s/g, (m, k) => values[k]);
  }
  const num = (n) => new Intl.NumberFormat(lang).format(n);
  let drawRank = null, askedStatus = false;

  // --- the arithmetic: the same as the Python verifier's -------------------------------

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  function bytesOf(hexText) {
    if (!/^([0-9a-f]{2})+$/i.test(hexText)) { throw new Error("not hex: " + hexText); }
    return new Uint8Array(hexText.match(/../g).map((pair) => parseInt(pair, 16)));
  }

  async function sha256Hex(bytes) {
    return hex(new Uint8Array(await window.crypto.subtle.digest("SHA-256", bytes)));
  }

  /** The fan's key as the published list writes it: the first 8 bytes of HMAC-SHA256(seed, "event:user"), hex. */
  async function fanKey(seed, eventId, userId) {
    const key = await window.crypto.subtle.importKey("raw", seed, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = await window.crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${eventId}:${userId}`));
    return hex(new Uint8Array(mac).slice(0, 8));
  }

  // The server's sorted-set score: the 64-bit number / 2**64 as a double (Number() rounds as Python's float()).
  const keyValue = (keyHex) => Number(BigInt("0x" + keyHex)) / 2 ** 64;

  /** Where `mine` falls in the list ordered by key, then ticket (1 = first), without sorting the whole list. */
  function rankIn(entries, mine) {
    const value = keyValue(mine.key);
    let rank = 1;
    for (const entry of entries) {
      const other = keyValue(entry.key);
      if (other < value || (other === value && entry.ticket < mine.ticket)) { rank += 1; }
    }
    return rank;
  }

  // --- the check ---------------------------------------------------------------------

  async function getJson(url) {
    const response = await window.fetch(url, { credentials: "same-origin", cache: "no-store",
      headers: { "Accept": "application/json" } });
    if (!response.ok) { throw new Error("status " + response.status); }
    return response.json();
  }

  async function check() {
    const draw = await getJson(cfg.drawUrl);
    if (!draw.seed) { return [{ ok: false, text: _("The draw is not revealed yet: that happens at the opening.") }]; }
    const seed = bytesOf(draw.seed);
    const lines = [];
    const matches = (await sha256Hex(seed)) === String(draw.commitment).toLowerCase();
    lines.push(matches
      ? { ok: true, check: "commitment", text: _("The revealed seed matches the commitment published before the opening.") }
      : { ok: false, check: "commitment", text: _("The revealed seed does not match the commitment: this draw cannot be trusted.") });
    const seen = recall(SEEN_KEY);
    if (seen && seen !== String(draw.commitment).toLowerCase()) {
      lines.push({ ok: false, check: "seen", text: _("The commitment is not the one this browser was shown before the opening.") });
    }
    const key = await fanKey(seed, cfg.eventId, cfg.userId);
    const entries = (await getJson(draw.entries_url)).entries.map((e) => ({ ticket: e.ticket, key: e.key.toLowerCase() }));
    const mine = entries.find((entry) => entry.key === key);
    if (!mine) {
      lines.push({ ok: false, check: "rank", text: _("Your key is not in the published list of the draw.") });
      return lines;
    }
    if (entries.length !== draw.prequeue_size) {
      lines.push({ ok: false, check: "size", text: fmt(_("The list has %(count)s entries, but %(size)s fans were drawn."),
        { count: num(entries.length), size: num(draw.prequeue_size) }) });
    }
    const rank = rankIn(entries, mine);
    lines.push({ ok: true, check: "rank", rank,
      text: fmt(_("Your key ranks %(rank)s of %(total)s in the draw."), { rank: num(rank), total: num(entries.length) }) });
    lines.push({ ok: rank === drawRank, check: "place", place: drawRank,
      text: fmt(_("Your place at the opening was %(place)s."), { place: num(drawRank) }) });
    return lines;
  }

  function show(lines) {
    const list = $("wr-draw-results");
    list.replaceChildren(...lines.map((line) => {
      const item = document.createElement("li");
      item.className = "draw-check__line draw-check__line--" + (line.ok ? "ok" : "bad");
      item.dataset.ok = String(line.ok);
      if (line.check) { item.dataset.check = line.check; }
      if (line.rank !== undefined) { item.dataset.rank = String(line.rank); }
      if (line.place !== undefined) { item.dataset.place = String(line.place); }
      const mark = document.createElement("span");
      mark.className = "draw-check__mark";
      mark.textContent = line.ok ? "✓" : "✗";
      mark.setAttribute("aria-label", line.ok ? _("passed") : _("failed"));
      item.append(mark, " ", line.text);
      return item;
    }));
    const passed = lines.length > 0 && lines.every((line) => line.ok);
    box.dataset.result = passed ? "pass" : "fail";
    $("wr-draw-verdict").textContent = passed ? _("The draw checks out: your place follows the published draw.")
      : _("The draw does not check out. Keep these numbers and ask the organiser.");
  }

  async function onClick() {
    const button = $("wr-draw-check");
    button.disabled = true;
    box.dataset.result = "checking";
    $("wr-draw-verdict").textContent = _("Checking the draw…");
    try {
      show(await check());
    } catch (error) {
      box.dataset.result = "error";
      $("wr-draw-results").replaceChildren();
      $("wr-draw-verdict").textContent = _("We could not fetch the draw. Try again.") + " (" + error.message + ")";
    } finally {
      button.disabled = false;
    }
  }

  // --- what this browser saw before the opening ----------------------------------------

  function recall(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function remember(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* storage disabled: this page only */ }
  }

  function rememberShownCommitment() {
    const shown = $("wr-commitment");
    if (shown && !recall(SEEN_KEY)) { remember(SEEN_KEY, shown.textContent.trim().toLowerCase()); } // the first counts
  }

  // --- wiring ------------------------------------------------------------------------

  function offer(rank) {
    drawRank = rank;
    box.hidden = !(window.crypto && window.crypto.subtle); // WebCrypto needs HTTPS: without it, the public page
  }

  // A socket's `queued` frame comes without the rank (its join skips the database), and the record of the draw is
  // written a moment after the opening (docs/ARCHITECTURE.md): a fan this browser saw in the pre-queue asks the
  // HTTP status until the rank comes, every few seconds (spread, as everyone drawn asks at once), and stops once
  // the record is complete and the status still has none (not drawn), the sale is not open, or after two minutes.
  const ASK_EVERY_MS = 3000, ASK_FOR_MS = 120000;
  async function askStatus(until) {
    askedStatus = true;
    let again = false;
    try {
      const draw = await getJson(cfg.drawUrl); // first: a record complete before the status was read holds the rank
      const status = await getJson(root.dataset.statusUrl);
      if (typeof status.draw_rank === "number") { offer(status.draw_rank); return; }
      again = draw.opened && !draw.recorded;
    } catch (e) {
      again = true; // a failed request: ask again within the two minutes
    }
    if (again && drawRank === null && Date.now() + ASK_EVERY_MS < until) {
      setTimeout(() => { if (drawRank === null) { askStatus(until); } }, ASK_EVERY_MS * (0.5 + Math.random()));
    } // else no check offered: the public page explains how to check by hand
  }

  root.addEventListener("qms:place", (event) => {
    const { state, ticket, drawRank: rank } = event.detail;
    if (state === PREQUEUE) { remember(PREQUEUE_KEY, String(ticket)); return; }
    if (typeof rank === "number") { offer(rank); return; }
    if (!askedStatus && drawRank === null && ticket != null && recall(PREQUEUE_KEY) === String(ticket)) {
      askStatus(Date.now() + ASK_FOR_MS);
    }
  });
  $("wr-draw-check").addEventListener("click", onClick);
  rememberShownCommitment();
})();
