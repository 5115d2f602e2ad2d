// The instructor's dashboard: fills the tables from api/dashboard and refreshes them every
// ~1.5 s without reloading the page. Everything is written with textContent (never innerHTML),
// amounts arrive already formatted by the server, and the page carries no secret.
(function () {
  "use strict";

  const ROWS = 8; // rows per table: one view fits a 1280 x 720 projector at 18 px type
  const STRIPE_DASHBOARD = "https://dashboard.stripe.com/test/payments/";
  const POLL_MS = Number(document.body.dataset.pollMs) || 1500;
  const CONFIRMATION = document.body.dataset.confirmation;
  const CSRF_TOKEN = document.querySelector('meta[name="csrf-token"]').content;
  // Relative URLs, so the page also works behind jupyter-server-proxy's path prefix.
  const DATA_URL = "api/dashboard";
  const RESET_URL = "dashboard/reset";

  // How each status or outcome is coloured: ok (green), warn (amber), bad (red), info, muted.
  const KIND = {
    paid: "ok", succeeded: "ok", fulfilled: "ok", already_paid: "ok", verified: "ok",
    attempted: "warn", attempt_recorded: "warn", requires_action: "warn", unknown_order: "warn",
    created: "info", requires_payment_method: "info", duplicate: "info", processing: "info",
    canceled: "muted", missing: "muted", ignored_type: "muted", no_change: "muted",
    refunded: "info", partially_refunded: "info", refund_already_recorded: "info",
    disputed: "warn", already_disputed: "warn", dispute_won: "ok", dispute_already_closed: "info",
    amount_mismatch: "bad", rejected: "bad", refund_failed: "bad", dispute_lost: "bad",
  };

  const $ = (id) => document.getElementById(id);
  let latest = JSON.parse($("dashboard-data").textContent);
  let lastText = null;
  const seen = { orders: null, payments: null, deliveries: null, events: null };

  function text(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function breakable(eventType) {
    // payment_intent.payment_failed may wrap after its dot, nowhere else.
    return eventType ? eventType.replace(/\./g, ".\u200b") : eventType;
  }

  function badge(label, kind) {
    const span = document.createElement("span");
    span.className = "badge badge-" + (kind || KIND[label] || "muted");
    span.textContent = label;
    return span;
  }

  // An order's status, and what a person must look at about it (alerts.py), in words.
  function statusWithAlerts(o) {
    if (!o.alerts || !o.alerts.length) return badge(o.status);
    const wrap = document.createElement("span");
    const mark = badge("⚠ " + o.alerts.join(" · "), "bad");
    wrap.append(badge(o.status), " ", mark);
    return wrap;
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = text(content);
    if (className) td.className = className;
    if (!(content instanceof Node) && content) td.title = String(content);
    return td;
  }

  function rejection(outcome) {
    // "rejected: Invalid signature: No signatures found..." -> "Invalid signature" (all of it
    // in the tooltip): the room needs the reason, the instructor can hover for the details.
    const reason = outcome.replace(/^rejected: /, "");
    const td = cell(reason.split(":")[0], "outcome");
    td.title = reason;
    return td;
  }

  function paymentLink(payment) {
    // Test mode: the PaymentIntent's page on the real Stripe Dashboard. Offline: just the id.
    const url = payment.dashboard_url;
    if (typeof url !== "string" || !url.startsWith(STRIPE_DASHBOARD)) return payment.id;
    const a = document.createElement("a");
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = payment.id;
    return a;
  }

  function followLink(order) {
    const a = document.createElement("a");
    a.href = "#follow=" + encodeURIComponent(order.id);
    a.textContent = order.customer;
    a.setAttribute("aria-label", "Follow " + order.customer + "'s order " + order.id);
    return a;
  }

  // The lab holds nothing at all (just reset, or nobody has ordered yet).
  function labEmpty(data) {
    return data.totals.orders === 0 && data.totals.deliveries === 0
      && data.totals.webhook_events === 0;
  }

  function fill(name, items, key, makeCells, total, tooltip) {
    const body = $(name).tBodies[0];
    const known = seen[name];
    const rows = items.slice(0, ROWS).map((item) => {
      const tr = document.createElement("tr");
      tr.dataset.rowId = item.id || key(item);  // where focus goes back to after a refresh
      makeCells(item).forEach((td) => tr.appendChild(td));
      if (tooltip) tr.title = tooltip(item);
      // Highlight what appeared since the last refresh (not on the first paint).
      if (known !== null && !known.has(key(item))) tr.className = "fresh";
      return tr;
    });
    body.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell(labEmpty(latest) ? "nothing yet: the lab is empty" : "nothing yet", "empty");
      td.colSpan = $(name).tHead.rows[0].cells.length;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    seen[name] = new Set(items.map(key));
    const hidden = (total === undefined ? items.length : total) - rows.length;
    $(name + "-more").textContent = hidden > 0 ? "and " + hidden + " more" : "";
  }

  // What a refresh must not throw away: the focused element (found again by its row's id and
  // its place in the row) and where each box, and the page, is scrolled to.
  function keepPlace(repaint) {
    const active = document.activeElement;
    const row = active && active.closest ? active.closest("tr[data-row-id]") : null;
    const table = row ? row.closest("table") : null;
    const place = row ? [...row.querySelectorAll("a, button, [tabindex]")].indexOf(active) : -1;
    const boxes = [...document.querySelectorAll(".scroll-box")].map((b) => [b, b.scrollLeft, b.scrollTop]);
    const [x, y] = [window.scrollX, window.scrollY];
    repaint();
    if (row && table && !document.contains(active)) {
      const again = [...table.querySelectorAll("tr[data-row-id]")].find(
        (tr) => tr.dataset.rowId === row.dataset.rowId);
      const target = again ? again.querySelectorAll("a, button, [tabindex]")[place] : null;
      (target || table.closest(".scroll-box[tabindex]") || $("tab-" + currentView()))
        .focus({preventScroll: true});
    }
    boxes.forEach(([b, left, top]) => { b.scrollLeft = left; b.scrollTop = top; });
    if (window.scrollX !== x || window.scrollY !== y) window.scrollTo(x, y);
  }

  let resets = null;  // how many times the server was reset: a change means it was, meanwhile

  function forgetTheOldLab() {
    Object.keys(seen).forEach((k) => { seen[k] = null; });
    if (followed) followGone();
    $("demo-link").textContent = "The lab was reset: it is empty.";
  }

  function render(data) {
    const count = data.reset ? data.reset.resets : null;
    latest = data;
    if (resets !== null && count !== null && count !== resets) forgetTheOldLab();
    resets = count;
    keepPlace(() => paint(data));
    markScrollBoxes();
  }

  // The other way (a Checkout Session): the order is paid on Stripe's hosted page.
  function paysOn(o) {
    return o.pay_with === "checkout_session" ? " · on Stripe's page" : "";
  }

  function paint(data) {
    data.steps.forEach((s) => {
      const tile = document.querySelector('.step[data-step="' + s.step + '"] .step-count');
      if (tile) tile.textContent = s.count === null ? "–" : String(s.count);
    });
    $("total-orders").textContent = data.totals.orders;
    $("total-paid").textContent = data.totals.paid;
    $("total-canceled").textContent = data.totals.canceled;
    $("total-events").textContent = data.totals.webhook_events;
    if (data.background) $("background").textContent = data.background.summary;
    $("total-collected").textContent = data.totals.collected.join(" · ") || "nothing yet";

    // Learners find their own row by their customer id; the order id is in the Payments table
    // and in each row's tooltip.
    fill("orders", data.orders, (o) => o.id + o.status + (o.alerts || []).length, (o) => [
      cell(followLink(o), "customer"), cell(o.product + " × " + o.quantity + paysOn(o), "wrap"),
      cell(o.amount, "num"), cell(statusWithAlerts(o)), cell(o.step, "num"),
    ], data.totals.orders, (o) => o.id + " · " + o.created
      + (o.checkout_session ? " · Checkout Session " + o.checkout_session : "")
      + (o.payment_error ? " · " + o.payment_error : "")
      + (o.refunded ? " · refunded " + o.refunded : ""));
    fill("payments", data.payments, (p) => p.id + p.status, (p) => [
      cell(paymentLink(p), "id"), cell(badge(p.status)), cell(p.amount, "num"),
      cell(p.order, "id"),
    ]);
    fill("deliveries", data.deliveries, (d) => d.received + d.event + d.outcome, (d) => [
      cell(d.received), cell(breakable(d.type) || "(not a valid event)", "type"),
      cell(badge(d.verified ? "verified" : "rejected")),
      d.verified ? cell(badge(d.outcome)) : rejection(d.outcome),
    ], data.totals.deliveries);
    if (data.totals.refused_not_listed) {  // anyone can post junk: refusals past a cap are only counted
      const more = $("deliveries-more");
      more.textContent = (more.textContent ? more.textContent + "; " : "")
        + data.totals.refused_not_listed + " more refused (not listed)";
    }
    fill("events", data.events, (e) => e.id + e.outcome, (e) => [
      cell(e.received), cell(breakable(e.type), "type"), cell(badge(e.outcome)),
      cell(e.order, "id"),
    ], data.totals.webhook_events);
    renderLearners(data);
    renderFollow(data);
  }

  // --- learners: who is where, for how long (slowest first, as the server sorted them) ---
  function duration(since) {
    if (!since) return "";
    const seconds = Math.max(0, Math.floor(Date.now() / 1000) - since);
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function renderLearners(data) {
    const learners = data.learners || [];
    $("learners").replaceChildren(...learners.map((l) => {
      const li = document.createElement("li");
      li.className = "learner learner-" + (l.step === null ? "none" : "step" + l.step);
      const name = document.createElement("b");
      name.textContent = l.customer;
      const where = document.createElement("span");
      where.className = "where";
      where.dataset.since = l.since || "";
      where.textContent = l.step === null ? (l.status === "canceled" ? "canceled" : "not started")
        : "step " + l.step + (l.step === 6 ? " · done" : " · " + duration(l.since));
      li.append(name, where);
      li.title = l.customer + " · " + l.orders + (l.orders === 1 ? " order" : " orders");
      return li;
    }));
    if (learners.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = labEmpty(data) ? "nobody yet: the lab is empty" : "nobody yet";
      $("learners").appendChild(li);
    }
    const waiting = learners.filter((l) => l.step === null).length;
    $("learners-note").textContent = data.roster_size
      ? waiting + " of " + learners.length + " learners have not started (no order yet)."
      : "No class roster: learners appear with their first order (serve --roster FILE lists "
        + "everyone from the start).";
  }

  function tickDurations() {
    document.querySelectorAll("#learners .where").forEach((el) => {
      const since = Number(el.dataset.since);
      if (since && !el.textContent.endsWith("done")) {
        el.textContent = el.textContent.replace(/ · .*$/, "") + " · " + duration(since);
      }
    });
  }

  // --- follow one order, large on the projector ---------------------------------------------
  let followed = null;
  let followedOrder = null;

  async function loadFollowed() {
    if (!followed) return;
    try {
      const response = await fetch("api/orders/" + encodeURIComponent(followed),
                                   {cache: "no-cache", headers: {Accept: "application/json"}});
      if (response.status === 404) return followGone();
      if (!response.ok) return;
      followedOrder = (await response.json()).order;
    } catch (error) {
      return;
    }
    renderFollow(latest);
  }

  // The followed order is gone (a reset): say so, clear its steps, its events and its trace, and
  // stop asking for it (Follow again, or another order, asks once more).
  function followGone() {
    followedOrder = {missing: true};
    document.dispatchEvent(new CustomEvent("follow-gone", {detail: followed}));
    renderFollow(latest);
  }

  function renderFollow(data) {
    const box = $("follow-order");
    if (!followed || !followedOrder) { box.hidden = true; return; }
    box.hidden = false;
    const o = followedOrder;
    if (o.missing) {
      $("follow-summary").textContent = "No order " + followed + " on this server"
        + (labEmpty(data) ? ": the lab is empty." : ".");
      $("follow-now").textContent = "";
      document.querySelectorAll("#journey li").forEach((li) => {
        li.className = "";
        li.removeAttribute("aria-current");
      });
      $("follow-events").tBodies[0].replaceChildren();
      return;
    }
    const row = (data.orders || []).find((r) => r.id === o.id);
    const step = row ? row.step
      : (["paid", "partially_refunded", "refunded", "disputed"].includes(o.status) ? 6 : null);
    $("follow-summary").textContent = o.id + " · " + o.customer + " · "
      + (row ? row.product + " × " + row.quantity + " · " + row.amount : o.product);
    document.querySelectorAll("#journey li").forEach((li) => {
      const n = Number(li.dataset.step);
      li.className = step === null ? "" : n < step ? "done" : n === step ? "current" : "";
      if (n === step) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    $("follow-now").textContent = "Status " + o.status + " · attempts " + o.attempts
      + (o.last_payment_error ? " · last error " + (o.last_payment_error.decline_code
         || o.last_payment_error.code || o.last_payment_error.message) : "")
      + (step === null ? " · off the path (" + o.status + ")" : "")
      + (o.pay_with === "checkout_session" ? " · pays on Stripe's page (Checkout Session "
         + ((row && row.checkout_session) || "…") + ")" : "");
    const events = (data.events || []).filter((e) => e.order === o.id);
    const body = $("follow-events").tBodies[0];
    body.replaceChildren(...events.map((e) => {
      const tr = document.createElement("tr");
      [cell(e.received), cell(breakable(e.type), "type"), cell(badge(e.outcome))].forEach(
        (td) => tr.appendChild(td));
      return tr;
    }));
    if (events.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("no webhook event yet", "empty");
      td.colSpan = 3;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  // --- views: one screenful each at 1280 x 720, chosen by the address's #fragment -----------
  const VIEWS = ["orders", "learners", "webhooks", "follow"];

  function currentView() {
    const view = decodeURIComponent(location.hash.slice(1)).split("=")[0];
    return VIEWS.includes(view) ? view : "orders";
  }

  function showView() {
    const hash = decodeURIComponent(location.hash.slice(1));
    let view = hash.split("=")[0];
    if (view === "follow" && hash.includes("=")) {
      const id = hash.slice("follow=".length);
      if (id !== followed) { followed = id; followedOrder = null; $("follow-id").value = id; }
      loadFollowed();
    }
    if (!VIEWS.includes(view)) view = "orders";
    VIEWS.forEach((v) => {
      $("view-" + v).hidden = v !== view;
      const tab = $("tab-" + v);
      if (v === view) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    });
  }
  window.addEventListener("hashchange", showView);

  // A new address without the browser's jump to the element of the same id (#orders is also
  // the table's): focus stays where it is, the page stays where it was scrolled.
  function go(hash) {
    if (location.hash === hash) { showView(); markScrollBoxes(); return; }
    const before = location.href;
    history.pushState(null, "", hash);
    window.dispatchEvent(new HashChangeEvent("hashchange", {oldURL: before, newURL: location.href}));
    markScrollBoxes();
  }
  document.querySelectorAll(".views a").forEach((tab) => tab.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    go(tab.getAttribute("href"));
  }));
  $("follow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("follow-id").value.trim();
    if (id) { followedOrder = null; go("#follow=" + encodeURIComponent(id)); }
  });

  // A box that scrolls (a table at 200 % zoom, the trace's list on the projector) is a named
  // region in the Tab order, so a keyboard can scroll it; one that fits is neither.
  function markScrollBoxes() {
    document.querySelectorAll(".scroll-box").forEach((box) => {
      const scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
      if (scrolls && box.getAttribute("tabindex") !== "0") {
        box.setAttribute("role", "region");
        box.tabIndex = 0;
        if (box.dataset.labelledby) box.setAttribute("aria-labelledby", box.dataset.labelledby);
        if (box.dataset.label) box.setAttribute("aria-label", box.dataset.label);
      } else if (!scrolls && box.hasAttribute("tabindex") && document.activeElement !== box) {
        ["role", "tabindex", "aria-labelledby", "aria-label"].forEach((a) => box.removeAttribute(a));
      }
    });
  }
  window.markScrollBoxes = markScrollBoxes;  // trace.js, after it draws
  if (window.ResizeObserver) {
    const watch = new ResizeObserver(() => markScrollBoxes());
    document.querySelectorAll(".scroll-box, .scroll-box > *").forEach((el) => watch.observe(el));
  }

  function clock() {
    return new Date().toTimeString().slice(0, 8); // 14:03:07, like the server's times
  }

  let wasDown = false;

  function setLive(ok, message) {
    const live = $("live");
    live.className = "live " + (ok ? "live-ok" : "live-down");
    live.textContent = message;
    // Announced once when the server stops answering (role=alert), not at every tick.
    if (!ok && !wasDown) $("live-alert").textContent = "Dashboard: the server is not answering.";
    if (ok && wasDown) $("live-alert").textContent = "";
    wasDown = !ok;
  }

  async function refresh() {
    try {
      const response = await fetch(DATA_URL, { cache: "no-cache", credentials: "same-origin",
                                               headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.text();
      if (body !== lastText) {
        lastText = body;
        render(JSON.parse(body));
      }
      setLive(true, "● live · " + clock());
    } catch (error) {
      setLive(false, "● server not answering, retrying");
    }
  }

  async function loop() {
    if (!document.hidden) {  // a hidden tab costs the server nothing
      await refresh();
      tickDurations();
      if (followed && !(followedOrder && followedOrder.missing)
          && $("view-follow").hidden === false) await loadFollowed();
    }
    setTimeout(loop, POLL_MS);
  }

  // --- a demo order for the instructor: its checkout link, and the projector follows it ----
  let demoBusy = false;
  $("demo-order").addEventListener("click", async () => {
    if (demoBusy) return;
    demoBusy = true;  // not `disabled`: a disabled button loses the keyboard's focus
    $("demo-order").setAttribute("aria-disabled", "true");
    try {
      const response = await fetch("api/orders", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", Accept: "application/json"},
        body: JSON.stringify({productId: "prod_coffee_beans", quantity: 1, customer: "instructor"}),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error((answer.error && answer.error.message) || "HTTP " + response.status);
      const link = document.createElement("a");
      link.href = "checkout/" + encodeURIComponent(answer.order.id);
      link.target = "_blank";
      link.textContent = new URL(link.href, location.href).href;
      followedOrder = null;
      go("#follow=" + encodeURIComponent(answer.order.id));
      $("demo-link").replaceChildren("Demo order " + answer.order.id + ": pay it at ", link,
                                     " (4242 4242 4242 4242, 12/34, 123).");
    } catch (error) {
      $("demo-link").textContent = "No demo order: " + error.message;
    } finally {
      demoBusy = false;
      $("demo-order").removeAttribute("aria-disabled");
    }
  });

  // --- reset, after a confirmation -------------------------------------------------------
  const dialog = $("reset-dialog");

  $("reset-open").addEventListener("click", () => {
    const rules = latest.reset || { allowed: true, needs_token: false };
    $("reset-not-allowed").hidden = rules.allowed;
    $("reset-token-label").hidden = !rules.needs_token;
    $("reset-confirm").disabled = !rules.allowed;
    $("reset-error").textContent = "";
    dialog.showModal();
  });
  $("reset-cancel").addEventListener("click", () => dialog.close());

  $("reset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { confirm: CONFIRMATION };
    if (!$("reset-token-label").hidden) body.reset_token = $("reset-token").value;
    $("reset-confirm").disabled = true;
    try {
      const response = await fetch(RESET_URL, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF_TOKEN },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const answer = await response.json().catch(() => ({}));
        throw new Error((answer.error && answer.error.message) || "HTTP " + response.status);
      }
      dialog.close();
      lastText = null;
      await refresh();  // the new reset count: forgetTheOldLab()
      setLive(true, "● lab reset · " + clock());
    } catch (error) {
      $("reset-error").textContent = "Not reset: " + error.message;
    } finally {
      $("reset-confirm").disabled = false;
    }
  });

  render(latest); // first paint from the data embedded in the page, then keep it fresh
  showView();
  markScrollBoxes();
  loop();
})();
