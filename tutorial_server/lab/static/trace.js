// The dashboard's "Follow an order" view: the followed order's messages as the six-step
// sequence diagram (GET api/orders/<id>/trace, tutorial_server/trace.py), drawn in the browser
// by the Mermaid library this server serves (no CDN: it works offline and on a class network).
// Without the library (the shop and it are built by `make client`), the diagram's text shows.
// A trace of more than CONDENSE_OVER messages is drawn condensed (one arrow per step, with its
// counts: the server's trace.condensed) until "full" is picked; a shorter one is drawn in full.
//
// The page's Content-Security-Policy allows no inline style, and Mermaid writes its CSS as a
// <style> element inside the SVG: that CSS is moved into a constructed stylesheet
// (document.adoptedStyleSheets), which the CSP does not govern, before the SVG is shown.
(function () {
  "use strict";
  const POLL_MILLISECONDS = 2000;
  const CONDENSE_OVER = 15;  // as trace/diagram.py
  const $ = (id) => document.getElementById(id);
  let drawn = null;     // the Mermaid text on screen
  let orderId = null;
  let sheet = null;
  let renders = 0;
  let gone = null;      // the order the server no longer has (a reset): not asked for again
  const PROJECTOR = "dashboard-projector";

  function followed() {
    const hash = decodeURIComponent(location.hash.slice(1));
    return hash.startsWith("follow=") ? hash.slice("follow=".length) : null;
  }

  function setStatus(text) { $("trace-status").textContent = text; }

  // securityLevel "loose": "strict" runs the finished SVG through DOMPurify, whose parse of its
  // style attributes the CSP refuses (a console error per attribute). Safe here: the text is
  // built by the server (trace.mermaid keeps each message on its own line, without HTML or
  // directives), labels are plain SVG text (htmlLabels: false), and the CSP still refuses any
  // inline script.
  if (window.mermaid) {
    window.mermaid.initialize({startOnLoad: false, securityLevel: "loose", theme: "neutral",
                               htmlLabels: false,
                               sequence: {useMaxWidth: true, wrap: true, width: 260,
                                          mirrorActors: false}});
  }

  // While Mermaid draws (in a hidden element of this page), style attributes it sets become
  // CSSOM styles: the same look, and nothing for the CSP to refuse.
  // Its stylesheet (a <style> it fills with innerHTML) is kept aside for adoptedStyleSheets.
  async function cssomStyles(render) {
    const setAttribute = Element.prototype.setAttribute;
    const css = [];
    Element.prototype.setAttribute = function (name, value) {
      if (String(name).toLowerCase() === "style") { this.style.cssText = value; return; }
      return setAttribute.call(this, name, value);
    };
    // ... and the (then empty) <style> itself stays out of the page: even an empty one is
    // an inline stylesheet the CSP refuses.
    const {insertBefore, appendChild} = Node.prototype;
    const isStyle = (node) => node instanceof HTMLStyleElement || node instanceof SVGStyleElement;
    Node.prototype.insertBefore = function (node, before) {
      return isStyle(node) ? node : insertBefore.call(this, node, before);
    };
    Node.prototype.appendChild = function (node) {
      return isStyle(node) ? node : appendChild.call(this, node);
    };
    const styles = [HTMLStyleElement.prototype, SVGStyleElement.prototype];
    styles.forEach((proto) => Object.defineProperty(proto, "innerHTML", {
      configurable: true, get() { return ""; }, set(value) { css.push(String(value)); }}));
    try {
      const {svg} = await render();
      return {svg, css};
    } finally {
      Element.prototype.setAttribute = setAttribute;
      Object.assign(Node.prototype, {insertBefore, appendChild});
      styles.forEach((proto) => delete proto.innerHTML);  // Element.prototype's again
    }
  }

  // A second wall behind the server's cleaning (trace/diagram.py): every line must be one of the
  // statements the server writes, its label free of Mermaid's syntax.
  const STATEMENT = new RegExp("^(sequenceDiagram|    participant (C|S|St|N) as [A-Za-z ()/]+|"
    + "    (C|S|St|N)(->>|-->>|-x|--x)(C|S|St|N): [^;#%<>\"`{}\\\\\\u0000-\\u001f\\u007f-\\u00a0\\u2028\\u2029]*|"
    + "    Note over C,St: [^;#%<>\"`{}\\\\\\u0000-\\u001f\\u007f-\\u00a0\\u2028\\u2029]*)$");
  const wellFormed = (text) => text.split("\n").every((line) => STATEMENT.test(line));

  // The drawn text as an ordered list, one item per arrow: step, who, what, outcome (the answer
  // arrow under it, if any), time. Built with textContent from the statements checked above.
  const ARROW = /^    (C|S|St|N)(->>|-->>|-x|--x)(C|S|St|N): (.*)$/;

  function listOf(text) {
    const names = {};
    const items = [];
    let note = "";
    text.split("\n").forEach((line) => {
      const who = /^    participant (\S+) as (.*)$/.exec(line);
      if (who) { names[who[1]] = who[2]; return; }
      if (line.startsWith("    Note over C,St: ")) { note = line.slice(20); return; }
      const m = ARROW.exec(line);
      if (!m) return;
      const [, from, arrow, to, label] = m;
      const numbered = /^(\d)\. (.*?)(?: · (\+[^·]*))?$/.exec(label);
      const last = items[items.length - 1];
      if (!numbered && last && last.from === to && last.to === from && !last.outcome) {
        last.outcome = label;  // the answer to the arrow above
        last.failed = last.failed || arrow.endsWith("x");
        return;
      }
      items.push({step: numbered ? numbered[1] : "", from, to, what: numbered ? numbered[2] : label,
                  time: numbered && numbered[3] ? numbered[3] : "", failed: arrow.endsWith("x"),
                  outcome: ""});
    });
    const list = items.map((item) => {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = (item.step ? "Step " + item.step + " · " : "")
        + (names[item.from] || item.from) + " → " + (names[item.to] || item.to) + ": ";
      li.append(who, item.what);
      if (item.outcome) {
        const outcome = document.createElement("span");
        outcome.className = item.failed ? "outcome-failed" : "";
        outcome.textContent = " → " + item.outcome;
        li.append(outcome);
      } else if (item.failed) {
        const failed = document.createElement("span");
        failed.className = "outcome-failed";
        failed.textContent = " (failed)";
        li.append(failed);
      }
      if (item.time) li.append(" · " + item.time.trim());
      return li;
    });
    $("trace-list").replaceChildren(...list);
    $("trace-note").textContent = note;
    return items.length;
  }

  function clear() {
    drawn = null;
    $("trace-diagram").replaceChildren();
    $("trace-list").replaceChildren();
    $("trace-note").textContent = "";
    $("trace-text").textContent = "";
    $("trace-how").hidden = true;
  }

  async function draw(text) {
    $("trace-text").textContent = text;
    const arrows = listOf(text);
    const condensedText = text.includes("Note over C,St: condensed:");
    if (!wellFormed(text)) {
      setStatus("This trace holds a line the lab does not draw: its text is below.");
      $("trace-source").open = true;
      return;
    }
    if (!window.mermaid) {
      setStatus("The Mermaid library is not built here (make client): the diagram's text is below.");
      $("trace-source").open = true;
      return;
    }
    const id = "trace-svg-" + (++renders);
    const {svg, css} = await cssomStyles(() => window.mermaid.render(id, text));
    // Inline style attributes become CSSOM styles once the SVG is in the page (allowed). Taken
    // out of the text before it is parsed: even a DOMParser document refuses them under this
    // page's CSP.
    const inline = [];
    const bare = svg.replace(/ style="([^"]*)"/g, (match, value) => {
      inline.push(value.replace(/&quot;/g, '"').replace(/&amp;/g, "&"));
      return ` data-trace-style="${inline.length - 1}"`;
    });
    const root = new DOMParser().parseFromString(bare, "image/svg+xml").documentElement;
    root.querySelectorAll("style").forEach((s) => { css.push(s.textContent); s.remove(); });
    if (!sheet) {
      sheet = new CSSStyleSheet();
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    sheet.replaceSync(css.join("\n"));
    root.removeAttribute("data-trace-style");  // its max-width: the dashboard's CSS sizes it
    const shown = document.importNode(root, true);
    shown.querySelectorAll("[data-trace-style]").forEach((el) => {
      el.style.cssText = inline[Number(el.dataset.traceStyle)];
      el.removeAttribute("data-trace-style");
    });
    // Its name: what it shows, and where the same in words is (the list beside it).
    shown.setAttribute("role", "img");
    shown.setAttribute("aria-label", "Sequence diagram of order " + orderId + ": " + arrows
      + (condensedText ? " arrows, one per step (condensed)" : " arrows, every message")
      + ". The same as a list: " + $("trace-list-heading").textContent + ".");
    $("trace-diagram").replaceChildren(shown);
    setStatus("");
    if (window.markScrollBoxes) window.markScrollBoxes();
  }

  async function refresh() {
    const id = followed();
    const view = $("view-follow");
    if (!id || !view || view.hidden || id === gone) return;
    if (id !== orderId) { orderId = id; clear(); }
    try {
      const response = await fetch("api/orders/" + encodeURIComponent(id) + "/trace",
                                   {cache: "no-cache", headers: {Accept: "application/json"}});
      if (response.status === 404) { forget(id); return; }
      if (!response.ok) { setStatus("Trace: HTTP " + response.status); return; }
      const body = await response.json();
      // On the projector, condensed by step whatever its length; else only a long one.
      const long = typeof body.condensed === "string"
        && (body.data.length > CONDENSE_OVER || document.body.classList.contains("projector"));
      $("trace-how").hidden = !long;
      const text = long && $("trace-condensed").checked ? body.condensed : body.mermaid;
      if (text !== drawn && id === orderId) {
        drawn = text;
        await draw(text);
      }
    } catch (error) {
      setStatus("Could not draw the trace: " + error.message);
    }
  }

  // The order is gone (a reset, or never was): clear its trace, and ask no more about it.
  function forget(id) {
    gone = id;
    if (id === orderId) { clear(); setStatus(""); }
  }
  document.addEventListener("follow-gone", (event) => forget(event.detail));

  // Projector mode: one order on one screen (dashboard.css), condensed by step until "full".
  function projector(on) {
    document.body.classList.toggle("projector", on);
    $("projector").setAttribute("aria-pressed", String(on));
    try { localStorage.setItem(PROJECTOR, on ? "on" : ""); } catch (error) { /* private mode */ }
    if (on) $("trace-condensed").checked = true;
    drawn = null;
    refresh();
  }
  $("projector").addEventListener("click", () => projector(!document.body.classList.contains("projector")));
  try { if (localStorage.getItem(PROJECTOR) === "on") projector(true); } catch (error) { /* none */ }

  window.addEventListener("hashchange", () => { gone = null; setTimeout(refresh, 0); });
  document.querySelectorAll("input[name=trace-how]").forEach(
    (input) => input.addEventListener("change", () => refresh()));
  refresh();
  setInterval(refresh, POLL_MILLISECONDS);
})();
