// Top-context snippets, painted in the browser; colors from colors.js.

(function () {
  const { hexToRgb, textColor, ESCAPE } = window.probeColors;

  // Top contexts (panels.colored_snippet): each snippet is one empty span whose data-*
  // attributes say its chars and colors; paint its chars here, again whenever Dash sends new
  // ones (a unit change reuses the spans, changing only their attributes).
  function paintSnippets() {
    document.querySelectorAll(".ctx-text[data-colors]").forEach((span) => {
      const key = span.dataset.colors + "|" + span.dataset.peak + "|" + span.dataset.text;
      if (span.dataset.painted === key) return;
      const chars = Array.from(span.dataset.text); // code points, as Python indexes them
      const peak = Number(span.dataset.peak);
      span.innerHTML = chars.map((ch, i) => {
        const rgb = hexToRgb("#" + span.dataset.colors.slice(6 * i, 6 * i + 6));
        return "<span" + (i === peak ? ' class="ctx-peak"' : "") + ' style="background:rgb(' +
          rgb.join(",") + ");color:" + textColor(rgb) + '">' + (ESCAPE[ch] || ch) + "</span>";
      }).join("");
      span.dataset.painted = key;
    });
  }
  new MutationObserver(paintSnippets).observe(document.documentElement, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-colors"],
  });
})();
