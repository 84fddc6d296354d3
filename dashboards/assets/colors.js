// Colors of the text view and the top-context snippets, shared by probe.js and snippets.js
// (Dash loads assets in name order: this one first). They interpolate the anchors sent by
// the server from probe.colors, exactly like probe.colors.to_rgb, so the page and every
// export agree.

window.probeColors = (function () {
  function hexToRgb(hex) {
    return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }

  // Same math as probe.colors.to_rgb: [low, limit] onto [-1, 1], clipped; no value: the
  // map's neutral (`missing`: 0, its centre; -1, the bottom of an upper half). Then
  // interpolate the anchors.
  function toRgb(table, value, limit, low, missing) {
    const top = limit > 0 ? limit : 1;
    const position = value === null || isNaN(value) ? missing || 0 :
      Math.max(-1, Math.min(1, (2 * (value - low)) / (top - low) - 1));
    const scaled = ((position + 1) / 2) * (table.length - 1);
    const anchor = Math.max(0, Math.min(table.length - 2, Math.floor(scaled)));
    const f = scaled - anchor;
    return [0, 1, 2].map((c) => Math.round(table[anchor][c] * (1 - f) + table[anchor + 1][c] * f));
  }

  // Same rule as probe.colors.text_color.
  function textColor(rgb) {
    const luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
    return luminance > 0.45 ? "#000000" : "#ffffff";
  }

  // HTML special chars of the text, escaped where a char is written into markup.
  const ESCAPE = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
  return { hexToRgb: hexToRgb, toRgb: toRgb, textColor: textColor, ESCAPE: ESCAPE };
})();
