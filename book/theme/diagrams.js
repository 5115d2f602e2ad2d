// Draws each <pre class="mermaid"> with the vendored Mermaid library (vendor/mermaid.min.js,
// from `make client`): nothing is fetched from another site. The source stays on the page,
// under "Diagram source", for readers whose browser draws nothing.
(function () {
  if (typeof mermaid !== "object") { return; }
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
  mermaid.run({ querySelector: "pre.mermaid" }).then(function () {
    document.querySelectorAll("pre.mermaid svg").forEach(function (svg, n) {
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", "Sequence diagram " + (n + 1) + "; its source follows");
    });
    document.body.setAttribute("data-diagrams", "drawn");
  });
})();
