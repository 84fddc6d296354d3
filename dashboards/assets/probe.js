// Client-side rendering of the text view (see dashboards/textview.py); colors from colors.js.

(function () {
  const { hexToRgb, toRgb, textColor } = window.probeColors;

  function fmt(value) {
    return value === null ? "n/a" : value.toFixed(3);
  }

  // Stripe height: the tracks share the ~6 px gap between lines (more would cover the next).
  function stripeHeight(payload) {
    return payload.tracks.length <= 3 ? 2 : 1;
  }

  function stripes(payload, i, inks) {
    // One stripe per feature track, stacked under the glyphs (in the span's padding).
    const layers = [];
    const height = stripeHeight(payload);
    payload.tracks.forEach((track, k) => {
      const value = track.values[i];
      let color = null;
      if (track.binary) {
        if (value >= 0.5) color = track.color;
      } else if (value !== null && inks[k].peak > 0) {
        // Its track color, as opaque as the value is large (as in the exports).
        const alpha = Math.min(1, Math.abs(value) / inks[k].peak);
        if (alpha > 0) color = "rgba(" + inks[k].rgb + "," + alpha.toFixed(2) + ")";
      }
      if (color) {
        layers.push("linear-gradient(" + color + "," + color + ") left 0 bottom " + height * k +
          "px / 100% " + height + "px no-repeat");
      }
    });
    return layers;
  }

  function renderLegend(payload, table) {
    const legend = document.getElementById("legend");
    if (!legend) return;
    const gradient = payload.anchors.join(",");
    const tracks = payload.tracks
      .map((t) => {
        return '<span class="track-key"><i style="background:' + t.color + '"></i>' +
          t.name.replace(/&/g, "&amp;").replace(/</g, "&lt;") + "</span>";
      })
      .join("");
    const untracked = (payload.untracked || []).length;
    const more = untracked ? '<span class="legend-window" title="' +
      payload.untracked.join(", ").replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";") +
      '">+' + untracked + " more feature(s) searched, not drawn</span>" : "";
    legend.innerHTML =
      '<span class="legend-label">' + payload.label + "</span>" +
      '<span class="legend-tick">' + payload.low.toFixed(3).replace("-", "−") + "</span>" +
      '<span class="legend-bar" style="background:linear-gradient(to right,' + gradient + ')"></span>' +
      '<span class="legend-tick">' + (payload.low < 0 ? "+" : "") + payload.limit.toFixed(3) + "</span>" +
      '<span class="legend-window">chars ' + payload.start + "–" +
      (payload.start + payload.text.length) + "</span>" + tracks + more;
  }

  // Control and format chars (a BOM, a zero-width space) but tab and newline: no glyph of their own.
  const CONTROL = /^(?![\t\n])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]$/u;
  const ESCAPE = window.probeColors.ESCAPE;
  let current = null; // the payload on screen, for hover titles and brushing

  // Inline style of char i: its color, plus one stripe per feature track under it.
  function styleOf(payload, i, table, inks) {
    const rgb = toRgb(table, payload.values[i], payload.limit, payload.low, payload.missing);
    const background = "rgb(" + rgb.join(",") + ")";
    let css = "color:" + textColor(rgb) + ";";
    if (!payload.tracks.length) return css + "background-color:" + background;
    const layers = stripes(payload, i, inks);
    layers.push(background);
    const padding = stripeHeight(payload) * payload.tracks.length;
    return css + "padding-bottom:" + padding + "px;background:" + layers.join(",");
  }

  // Lines go in blocks of BLOCK_LINES; blocks off screen skip style, layout and paint
  // (content-visibility: auto), and most of a window is off screen. A new window or coloring
  // draws the blocks in view at once (where the view will be: a new window centers its
  // focus) and the others when the browser is next idle (a new window's are empty blocks of
  // the same height until then): the view is up in about half the time.
  const BLOCK_LINES = 8;
  let spans = []; // the window's char spans by char offset (holes where not drawn yet)
  let blocks = []; // [from, to, lines] of each block of the window on screen
  let brushed = [0, 0]; // the brushed span [start, stop) in recording positions
  let pending = null; // what is left to draw: {payload, table, inks, blocks: [k, ...]}

  let matched = [0, 0]; // the Brush & match result last clicked, marked the same way

  // Mark the brushed span's chars, and the clicked match's, that are in the window (kept
  // across redraws).
  function markBrush() {
    const body = document.getElementById("text-body");
    if (!body) return;
    const start = Number(body.dataset.start);
    [["brushed", brushed], ["matched", matched]].forEach(([name, range]) => {
      body.querySelectorAll("span." + name).forEach((s) => s.classList.remove(name));
      const from = Math.max(range[0] - start, 0);
      const to = Math.min(range[1] - start, spans.length);
      for (let i = from; i < to; i++) if (spans[i]) spans[i].classList.add(name);
    });
  }

  function setBrush(start, stop) {
    const valid = Number.isInteger(start) && Number.isInteger(stop) && start < stop;
    brushed = valid ? [start, stop] : [0, 0];
    matched = [0, 0]; // a new brush: the old one's match is no longer the question
    markBrush();
    return window.dash_clientside.no_update;
  }

  // [from, to, lines] of each block of BLOCK_LINES lines of text.
  function splitBlocks(text) {
    const found = [];
    let from = 0;
    let line = 0;
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "\n" && ++line % BLOCK_LINES === 0) {
        found.push([from, i + 1, BLOCK_LINES]);
        from = i + 1;
      }
    }
    if (from < text.length || !found.length) found.push([from, text.length, (line % BLOCK_LINES) + 1]);
    return found;
  }

  // The spans of chars [from, to): one HTML string, since one parse is much faster than
  // thousands of DOM calls.
  function spansHtml(payload, from, to, table, inks) {
    const html = [];
    for (let i = from; i < to; i++) {
      const ch = payload.text[i];
      // A control char (CR of CRLF text, form feed) shows as a mark, as in the exports: the
      // browser would break the line at a CR and double-space the text.
      const control = CONTROL.test(ch);
      const cls = ch === "\n" ? ' class="nl"' : control ? ' class="ctl"' : "";
      html.push("<span" + cls + ' style="' + styleOf(payload, i, table, inks) + '">' +
        (control ? "" : ESCAPE[ch] || ch) + "</span>");
    }
    return html.join("");
  }

  // Draw block k of the window on screen: fill an empty block, or restyle a drawn one.
  function drawBlock(body, k, payload, table, inks) {
    const [from, to] = blocks[k];
    const div = body.children[k];
    if (div.children.length) {
      for (let i = from; i < to; i++) spans[i].style.cssText = styleOf(payload, i, table, inks);
      return;
    }
    div.innerHTML = spansHtml(payload, from, to, table, inks);
    div.style.height = "";
    for (let i = from; i < to; i++) spans[i] = div.children[i - from];
  }

  function drawPending() {
    const body = document.getElementById("text-body");
    if (!pending || !body) return;
    const { payload, table, inks } = pending;
    pending.blocks.forEach((k) => drawBlock(body, k, payload, table, inks));
    pending = null;
    markBrush();
    body.dataset.drawn = payload.key;
  }

  // The view before any write: scroll offset, height and line height in px.
  function viewOf(body) {
    const line = parseFloat(getComputedStyle(body).lineHeight) || 20;
    return { top: body.scrollTop, height: body.clientHeight, line: line };
  }

  // Where the view will start, in lines: where it is, unless the focus (line `focusLine`)
  // is off its middle third or the window is new; then the focus goes to the middle (as far
  // as the window's `total` lines let it). {top, recenter}
  function topLineOf(view, focusLine, total, fresh) {
    const lines = view.height / view.line;
    const centered = Math.max(0, Math.min(focusLine + 0.5 - lines / 2, total - lines));
    const now = view.top / view.line;
    const recenter = fresh || Math.abs(now - centered) > lines / 3;
    return { top: recenter ? centered : now, recenter: recenter };
  }

  // Draw the blocks in view (with a line to spare each side) now, the others in drawPending.
  // Returns whether the view is to move to center the focus.
  function draw(body, payload, table, inks, view, fresh) {
    const focus = payload.focus - payload.start;
    const near = Math.max(0, blocks.findIndex(([, to]) => focus < to));
    let focusLine = near * BLOCK_LINES;
    for (let i = blocks[near][0]; i < focus; i++) if (payload.text[i] === "\n") focusLine++;
    const total = blocks.reduce((sum, block) => sum + block[2], 0);
    const { top, recenter } = topLineOf(view, focusLine, total, fresh);
    const first = top - 1;
    const last = first + view.height / view.line + 2;
    const later = [];
    blocks.forEach((_, k) => {
      const inView = (k + 1) * BLOCK_LINES > first && k * BLOCK_LINES < last;
      if (inView || k === near) drawBlock(body, k, payload, table, inks);
      else later.push(k);
    });
    pending = later.length ? { payload, table, inks, blocks: later } : null;
    if (pending && window.requestIdleCallback) requestIdleCallback(drawPending, { timeout: 200 });
    else if (pending) setTimeout(drawPending, 0);
    return recenter;
  }

  // A new window: empty blocks of the right height (line-height 1.75, style.css).
  function newWindow(body, text) {
    blocks = splitBlocks(text);
    body.innerHTML = blocks
      .map(([, , lines]) => {
        const height = (lines * 1.75).toFixed(2) + "em";
        return '<div class="lines" style="contain-intrinsic-block-size:auto ' + height +
          ";height:" + height + '"></div>';
      })
      .join("");
    spans = new Array(text.length);
  }

  // Draw a window payload: from Dash (a control, the URL, a clicked result) or from a step.
  function render(payload, fromStep) {
    const body = document.getElementById("text-body");
    if (!payload || !body) return window.dash_clientside.no_update;
    // Code points, as Python indexes the values (a JS string counts an emoji twice).
    if (typeof payload.text === "string") payload.text = Array.from(payload.text);
    const table = payload.anchors.map(hexToRgb);
    const inks = payload.tracks.map((t) => ({
      rgb: hexToRgb(t.color).join(","),
      peak: t.values.reduce((m, v) => (v === null ? m : Math.max(m, Math.abs(v))), 0),
    }));
    pending = null; // superseded: draw() below covers every block again
    if (!fromStep) clearTimeout(syncTimer); // a step's view not yet handed to Dash is superseded
    const note = document.getElementById("step-note");
    if (note) note.textContent = ""; // a step that could not move sets it again after this
    const view = viewOf(body); // layout read before the writes below
    const fresh = body.dataset.layout !== payload.layout || spans.length !== payload.text.length;
    if (fresh) {
      newWindow(body, payload.text); // else same characters and tracks: only restyle
      body.dataset.layout = payload.layout;
    }
    const recenter = draw(body, payload, table, inks, view, fresh);
    const old = body.querySelector(".focus");
    if (old) old.classList.remove("focus");
    const focus = spans[payload.focus - payload.start];
    if (focus) focus.classList.add("focus");
    renderLegend(payload, table);
    current = payload;
    body.dataset.key = payload.key;
    body.dataset.start = payload.start;
    if (!pending) body.dataset.drawn = payload.key;
    markBrush();
    if (focus && recenter) {
      // Measured, not computed from line numbers (exact whatever the fonts), and only after
      // every write above, so the page is laid out once. (Not offsetTop: the contained
      // blocks are the spans' offsetParents.)
      const above = focus.getBoundingClientRect().top - body.getBoundingClientRect().top;
      body.scrollTop += above - body.clientHeight / 2;
    }
    if (focus) { // a long line scrolls sideways: keep the focus in view that way too
      const box = body.getBoundingClientRect(), spot = focus.getBoundingClientRect();
      if (spot.left < box.left || spot.right > box.right) {
        body.scrollLeft += spot.left - box.left - body.clientWidth / 2;
      }
    }
    return payload.key;
  }

  // Index, char, value and features of the hovered char, written into its title on demand.
  function describe(span) {
    const body = document.getElementById("text-body");
    if (!current || !body) return;
    const i = spans.indexOf(span);
    if (i < 0) return;
    const index = current.start + i;
    // Named after what the view is colored by: "layer 2 · cell 37 = …", "per-char loss (bits) = …".
    let title = "#" + index + "  " + JSON.stringify(current.text[i]) + "  " + current.label +
      " = " + fmt(current.values[i]);
    current.tracks.forEach((t) => (title += "\n" + t.name + " = " + fmt(t.values[i])));
    span.title = title;
  }

  // The recording position of a text node or span inside the text view, or null.
  function positionOf(node) {
    const body = document.getElementById("text-body");
    const span = node && (node.nodeType === 3 ? node.parentElement : node);
    const i = span ? spans.indexOf(span) : -1;
    if (!body || i < 0) return null;
    return Number(body.dataset.start) + i;
  }

  // Brushing: a mouse selection in the text sets the brush start/stop inputs.
  function brush() {
    const selection = window.getSelection();
    if (!selection || selection.isCollapsed) return;
    const a = positionOf(selection.anchorNode);
    const b = positionOf(selection.focusNode);
    if (a === null || b === null) return;
    const set = window.dash_clientside.set_props;
    set("brush-start", { value: Math.min(a, b) });
    set("brush-stop", { value: Math.max(a, b) + 1 });
  }

  // Step buttons (and their keys) take a fast path: one POST to /_probe/step, draw the answer
  // at once, then hand the view to Dash ("view-sync") so the URL and controls follow.
  const STEPS = ["prev-unit", "next-unit", "prev-window", "next-window", "prev-strong", "next-strong"];
  let stepping = Promise.resolve();
  // Field by field: the server's JSON sorts keys, Dash's keeps them in the View's order (a
  // whole-string compare saw every step as a move, and a step that moved nothing then
  // synced the view it started from over a change the user made meanwhile).
  function sameView(a, b) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
  }
  let syncTimer = null;
  let syncView = null; // the last step's view, until it is handed to Dash
  // Hand the last step's view to Dash now: at once when the user does anything but step (a
  // control changed next is then sent after it and applied on top of it, not undone by it).
  function flushSync() {
    if (syncTimer === null) return;
    clearTimeout(syncTimer);
    syncTimer = null;
    window.dash_clientside.set_props("view-sync", { data: syncView });
  }
  function step(action) {
    stepping = stepping.then(async () => {
      if (!current || !current.view) return;
      const response = await fetch("_probe/step", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action: action, view: current.view }),
      });
      if (!response.ok) return;
      const answer = await response.json();
      const moved = !sameView(answer.view, current.view);
      render(answer.payload, true);
      // The view at once (what a control changed next starts from), the URL and controls later.
      if (moved) window.dash_clientside.set_props("view", { data: answer.view });
      const note = document.getElementById("step-note");
      if (note) note.textContent = (answer.messages || []).join(" · ");
      if (!moved) return; // nothing for Dash to catch up on
      // Let the URL, controls and panels catch up once the user pauses: rapid stepping
      // (holding j) then costs one small request per step and nothing else.
      clearTimeout(syncTimer);
      syncView = answer.view;
      syncTimer = setTimeout(flushSync, 250);
    }).catch(() => {});
  }
  const isStep = (target) => {
    const button = target.closest && target.closest("button");
    return button && STEPS.includes(button.id) ? button : null;
  };
  document.addEventListener("click", (event) => {
    const button = isStep(event.target);
    if (!button) return flushSync();
    if (!current) return;
    event.stopPropagation(); // Dash's own n_clicks path stays as the fallback without JS
    step(button.id);
  }, true);
  document.addEventListener("pointerdown", (event) => isStep(event.target) || flushSync(), true);

  // Keyboard: j/k next/previous unit, n/p next/previous strong activation.
  const keys = { j: "next-unit", k: "prev-unit", n: "next-strong", p: "prev-strong" };
  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    const id = keys[event.key];
    if (!id || tag === "input" || tag === "textarea") flushSync(); // typing into a control
    if (tag === "input" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    const body = document.getElementById("text-body");
    if (!body || !body.offsetParent) return; // another tab is shown: the keys act on the text
    if (id && document.getElementById(id)) document.getElementById(id).click();
  });
  document.addEventListener("mouseover", (event) => {
    if (event.target.tagName === "SPAN" && event.target.closest("#text-body")) {
      describe(event.target);
    }
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-span]");
    if (!button) return;
    matched = button.dataset.span.split(":").map(Number);
    markBrush(); // now where the span is in view; the window the click opens marks it again
  });
  document.addEventListener("mouseup", (event) => {
    if (event.target.closest && event.target.closest("#text-body")) brush();
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    probe: {
      render: render,
      setBrush: setBrush,
    },
  });
})();
