// recon review page: keyboard and actions without a page reload (progressive enhancement:
// every action is also a plain form that works without this script).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const page = document.body.dataset.page;
  const toastBox = document.getElementById("toast");
  let toastTimer = null;

  function toast(message, isError) {
    toastBox.textContent = message;
    toastBox.className = isError ? "error" : "ok";
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toastBox.hidden = true; }, isError ? 8000 : 2500);
  }

  async function post(url, data) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
        body: JSON.stringify(data || {}),
      });
    } catch (err) {
      return { ok: false, error: "the server did not answer: " + err.message };
    }
    let body;
    try { body = await response.json(); } catch (err) { body = { ok: false, error: "HTTP " + response.status }; }
    if (!response.ok && body.ok !== false) body.ok = false;
    return body;
  }

  function typing(event) {
    const t = event.target;
    return t && (t.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(t.tagName));
  }

  function comment() {
    const box = document.getElementById("comment");
    return box ? box.value.trim() : "";
  }

  const NEXT_STATE = { accept: "accepted", reject: "rejected", unmatch: "reversed" };

  function setState(element, badge, state) {
    element.dataset.state = state;
    if (badge) {
      badge.textContent = state;
      badge.className = "badge state-" + state;
    }
  }

  function bumpCount(state, delta) {
    const el = document.querySelector('[data-count="' + state + '"]');
    if (!el) return;
    const n = parseInt(el.textContent.replace(/,/g, ""), 10) + delta;
    el.textContent = n.toLocaleString("en-US");
  }

  async function decide(element, badge, action) {
    const id = element.dataset.matchId;
    if (element.dataset.busy) return false;
    element.dataset.busy = "1";
    const before = element.dataset.state;
    const result = await post("/api/matches/" + encodeURIComponent(id) + "/" + action, { comment: comment() });
    delete element.dataset.busy;
    if (!result.ok) {
      toast(result.error || "refused", true);
      return false;
    }
    setState(element, badge, result.state);
    bumpCount(before, -1);
    bumpCount(result.state, 1);
    toast(id + " " + result.state + " by " + result.by, false);
    return true;
  }

  // -- the queue ------------------------------------------------------------------------------
  function queuePage() {
    const table = document.getElementById("queue");
    const rows = table ? Array.from(table.tBodies[0].rows) : [];
    let current = rows.length ? 0 : -1;

    function select(i) {
      if (!rows.length) return;
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach((r, k) => r.classList.toggle("selected", k === current));
      rows[current].scrollIntoView({ block: "nearest" });
    }

    function nextPage() {
      if (!table || !table.dataset.next) return false;
      // decided rows leave a state filter: the next page starts after the rows still in it
      const state = table.dataset.filterState;
      const kept = rows.filter((r) => state === "any" || r.dataset.state === state).length;
      const url = new URL(table.dataset.base, window.location.href);
      url.searchParams.set("offset", String(parseInt(table.dataset.offset, 10) + kept));
      window.location.assign(url.pathname + url.search);
      return true;
    }

    async function act(row, action) {
      // a decision moves on at once (a reviewer's next key must not wait for the server);
      // a refusal is shown and the row keeps its state
      const index = rows.indexOf(row);
      const last = index === rows.length - 1;
      if (action !== "unmatch" && index === current && !last) select(current + 1);
      const ok = await decide(row, row.querySelector(".state .badge"), action);
      if (ok && action !== "unmatch" && last && index === current) nextPage();
    }

    rows.forEach((row, i) => {
      row.addEventListener("click", (event) => { if (!event.target.closest("a, button")) select(i); });
      row.querySelectorAll("form.act").forEach((form) => {
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          select(i);
          act(row, form.querySelector("button").dataset.action);
        });
      });
    });
    if (rows.length) select(0);

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (typing(event)) {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      const row = rows[current];
      switch (event.key) {
        case "j":
          if (current === rows.length - 1) nextPage(); else select(current + 1);
          break;
        case "k": select(current - 1); break;
        case "a": if (row) act(row, "accept"); break;
        case "r": if (row) act(row, "reject"); break;
        case "u": if (row) act(row, "unmatch"); break;
        case "o": case "Enter":
          if (row) window.location.assign("/matches/" + encodeURIComponent(row.dataset.matchId));
          break;
        case "/": {
          const box = document.getElementById("filter-text");
          if (box) { box.focus(); box.select(); }
          break;
        }
        default: return;
      }
      event.preventDefault();
    });

    const bulk = document.getElementById("bulk-accept");
    if (bulk) {
      bulk.addEventListener("submit", async (event) => {
        event.preventDefault();
        const data = Object.fromEntries(new FormData(bulk).entries());
        delete data.csrf_token;
        data.comment = comment();
        const n = parseInt(data.count, 10).toLocaleString("en-US");
        if (!window.confirm("Accept all " + n + " matches these filters pick?")) return;
        const result = await post("/api/bulk-accept", data);
        if (!result.ok) { toast(result.error || "refused", true); return; }
        toast("accepted " + result.accepted + " by " + result.by, false);
        setTimeout(() => window.location.reload(), 600);
      });
    }
  }

  // -- one proposal ---------------------------------------------------------------------------
  function matchPage() {
    const article = document.getElementById("proposal");
    const badge = document.getElementById("state");
    const run = (action) => decide(article, badge, action);
    article.querySelectorAll("form.act").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        run(form.querySelector("button").dataset.action);
      });
    });
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
      const action = { a: "accept", r: "reject", u: "unmatch" }[event.key];
      if (action) { event.preventDefault(); run(action); }
    });
  }

  // -- manual match ---------------------------------------------------------------------------
  function formatMinor(minor, exponent) {
    const negative = minor < 0n;
    let digits = (negative ? -minor : minor).toString().padStart(exponent + 1, "0");
    const whole = digits.slice(0, digits.length - exponent) || "0";
    const fraction = exponent ? "." + digits.slice(digits.length - exponent) : "";
    return (negative ? "-" : "") + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + fraction;
  }

  function manualPage() {
    const form = document.getElementById("manual");
    const boxes = Array.from(form.querySelectorAll('input[type="checkbox"]'));

    function totals() {
      const sums = { bank: 0n, ledger: 0n };
      const currencies = new Set();
      let exponent = 2;
      boxes.filter((b) => b.checked).forEach((b) => {
        sums[b.name] += BigInt(b.dataset.minor);
        currencies.add(b.dataset.currency);
        exponent = parseInt(b.dataset.exponent, 10);
      });
      const code = currencies.size === 1 ? Array.from(currencies)[0] + " " : "";
      const mixed = currencies.size > 1;
      document.getElementById("bank-total").textContent = code + formatMinor(sums.bank, exponent);
      document.getElementById("ledger-total").textContent = code + formatMinor(sums.ledger, exponent);
      const diff = document.getElementById("difference");
      diff.textContent = mixed ? "several currencies: pick one" : code + formatMinor(sums.bank - sums.ledger, exponent);
      diff.className = mixed || sums.bank !== sums.ledger ? "diff" : "balanced";
    }

    boxes.forEach((b) => b.addEventListener("change", totals));
    totals();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const pick = (side) => boxes.filter((b) => b.checked && b.name === side).map((b) => b.value);
      const data = {
        bank: pick("bank"), ledger: pick("ledger"),
        adjust: document.getElementById("adjust").value || null,
        comment: form.querySelector('input[name="comment"]').value,
      };
      const result = await post("/api/manual", data);
      if (!result.ok) { toast(result.error || "refused", true); return; }
      toast("matched by hand: " + result.match_id, false);
      window.location.assign(result.url);
    });
  }

  // -- write-back -----------------------------------------------------------------------------
  function writebackPage() {
    const form = document.getElementById("writeback");
    const out = document.getElementById("writeback-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      out.hidden = false;
      out.textContent = "writing…";
      const result = await post("/api/writeback", {
        to: form.querySelector('input[name="to"]').value,
        dry_run: form.querySelector('input[name="dry_run"]').checked,
      });
      button.disabled = false;
      out.textContent = result.summary || result.error || "";
      out.className = "result " + (result.ok ? "ok" : "error");
    });
  }

  const pages = { queue: queuePage, match: matchPage, manual: manualPage, writeback: writebackPage };
  if (pages[page]) pages[page]();
})();
