"use strict";
// Shared by both pages: reading the embedded data, colouring maps, drawing them over an image.
// Nothing here reaches the network: the data is the JSON in the page, maps are drawn on canvases.

const DATA = JSON.parse(document.getElementById("data").textContent);
const LEVELS = DATA.levels;

function bytesOf(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function floatsOf(base64) {
  const bytes = bytesOf(base64);
  return new Float32Array(bytes.buffer, 0, bytes.length / 4);
}

const COLOURS = { map: bytesOf(DATA.colours.map), similarity: bytesOf(DATA.colours.similarity) };

// One map of a quantised set: h x w codes and the range [lo, hi] they stand for.
class MapView {
  constructor(codes, lo, hi, h, w) {
    this.codes = codes; this.lo = lo; this.hi = hi; this.h = h; this.w = w;
  }
  value(i) { return this.lo + this.codes[i] * (this.hi - this.lo) / LEVELS; }
  // The colour code of cell i: its place in `range` [lo, hi], by default the map's own range
  // (then the code itself, since a map's codes span 0..LEVELS).
  colourCode(i, range) {
    if (!range) return this.codes[i];
    const [lo, hi] = range;
    if (hi <= lo) return 0;
    return Math.min(LEVELS, Math.max(0, Math.round((this.value(i) - lo) / (hi - lo) * LEVELS)));
  }
}

// The maps of an entry written by quantize_maps: shape (..., h, w), decoded on first use.
class QuantizedMaps {
  constructor(entry) {
    this.entry = entry;
    this.shape = entry.shape;
    this.h = this.shape[this.shape.length - 2];
    this.w = this.shape[this.shape.length - 1];
    this.codes = null;
  }
  map(...index) {
    if (!this.codes) {
      this.codes = bytesOf(this.entry.codes);
      this.lo = floatsOf(this.entry.lo);
      this.hi = floatsOf(this.entry.hi);
    }
    let k = 0;
    for (let d = 0; d < index.length; d++) k = k * this.shape[d] + index[d];
    const size = this.h * this.w;
    return new MapView(this.codes.subarray(k * size, (k + 1) * size), this.lo[k], this.hi[k], this.h, this.w);
  }
}

// An (H, W, 3) RGB image entry as a canvas of its own size.
function imageCanvas(entry) {
  const [h, w] = entry.size;
  const rgb = bytesOf(entry.rgb);
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(w, h);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    pixels.data[j] = rgb[i]; pixels.data[j + 1] = rgb[i + 1]; pixels.data[j + 2] = rgb[i + 2]; pixels.data[j + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

const scratch = document.createElement("canvas");

// Draw `view` coloured by `colours` into the rectangle (x, y, width, height) of `context`: one
// block per cell (or interpolated when `smooth`), at opacity `alpha` over what is there.
function paintMap(context, view, colours, range, x, y, width, height, alpha, smooth) {
  scratch.width = view.w; scratch.height = view.h;
  const small = scratch.getContext("2d");
  const pixels = small.createImageData(view.w, view.h);
  for (let i = 0; i < view.w * view.h; i++) {
    const c = 3 * view.colourCode(i, range);
    pixels.data[4 * i] = colours[c]; pixels.data[4 * i + 1] = colours[c + 1];
    pixels.data[4 * i + 2] = colours[c + 2]; pixels.data[4 * i + 3] = 255;
  }
  small.putImageData(pixels, 0, 0);
  context.save();
  context.globalAlpha = alpha;
  context.imageSmoothingEnabled = smooth;
  context.drawImage(scratch, x, y, width, height);
  context.restore();
}

// A horizontal colour bar of all LEVELS + 1 colours.
function paintColourBar(canvas, colours) {
  canvas.width = LEVELS + 1; canvas.height = 1;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(LEVELS + 1, 1);
  for (let i = 0; i <= LEVELS; i++) {
    pixels.data.set([colours[3 * i], colours[3 * i + 1], colours[3 * i + 2], 255], 4 * i);
  }
  context.putImageData(pixels, 0, 0);
}

function formatValue(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
}

function outline(context, x, y, width, height, colour) {
  context.save();
  context.strokeStyle = colour;
  context.lineWidth = 2;
  context.strokeRect(x + 1, y + 1, width - 2, height - 2);
  context.restore();
}

// The key map starts folded on a narrow screen, where it would push the maps down.
for (const keys of document.querySelectorAll("details.keys")) keys.open = window.innerWidth > 700;

// The image selector: hidden for a page of one image.
function setUpImageChoice(select, names, onChange) {
  names.forEach((name, i) => select.add(new Option(name, String(i))));
  select.parentElement.hidden = names.length < 2;
  select.addEventListener("change", () => onChange(Number(select.value)));
}

function fillSelect(select, labels) {
  select.length = 0;
  labels.forEach((label, i) => select.add(new Option(label, String(i))));
}

// The keys both pages share (the key map on each page lists them). A control that uses a key
// itself keeps it: arrows in a radio group, a slider, a list, the patch grid or a caption's words
// (marked data-arrow-keys); letters in a list, which jumps to an option by its first letter.
function onPageKeys(actions) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.key === "Escape") { actions.release(); return; }
    const target = event.target;
    if (target instanceof HTMLSelectElement) return;
    const usesArrows = (target instanceof HTMLInputElement && (target.type === "range" || target.type === "radio")) ||
      Boolean(target.closest("[data-arrow-keys]"));
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    const action = {
      "[": () => actions.layer(-1), "]": () => actions.layer(1),
      ",": () => actions.head(-1), ".": () => actions.head(1),
      m: () => actions.map(1), M: () => actions.map(-1),
      c: () => actions.klass(1), C: () => actions.klass(-1),
    }[event.key] || (step && !usesArrows ? () => actions.layer(step) : null);
    if (action) { event.preventDefault(); action(); }
  });
}

// Heads by importance, most important first, and each head's rank (0 the most important).
function rankHeads(importance) {
  return importance.map((value, h) => [value, h]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, h]) => h);
}

function headRanks(importance) {
  const ranks = new Array(importance.length);
  rankHeads(importance).forEach((h, rank) => { ranks[h] = rank; });
  return ranks;
}

// Head importance (layers, heads) as a small heat map, each layer scaled to its largest value; the
// head shown outlined at `layer` (null: none).
function paintImportance(canvas, importance, layer, head) {
  if (!importance) { canvas.parentElement.hidden = true; return; }
  const layers = importance.length, heads = importance[0].length;
  const side = Math.max(4, Math.min(16, Math.floor(128 / Math.max(layers, heads))));
  if (canvas.width !== heads * side) { canvas.width = heads * side; canvas.height = layers * side; }
  const context = canvas.getContext("2d");
  importance.forEach((row, l) => {
    const top = Math.max(...row);
    row.forEach((value, h) => {
      const code = top > 0 ? Math.round(value / top * LEVELS) : 0;
      const [r, g, b] = COLOURS.similarity.subarray(3 * code, 3 * code + 3);
      context.fillStyle = `rgb(${r}, ${g}, ${b})`;
      context.fillRect(h * side, l * side, side, side);
    });
  });
  if (layer !== null && head >= 0) outline(context, head * side, layer * side, side, side, "#ff2d2d");
}

// A method's scores from an evaluation's JSON, as one line: each measure with its 95% interval, then
// its verdicts against the baselines. `who`: the model's letter on a comparison; `name`: the
// method's name where the line does not stand beside it.
function scoresLine(scores, who, name) {
  const line = document.createElement("span");
  line.className = "score";
  const measures = scores.measures.map(([measure, value, low, high]) =>
    `${measure.replaceAll("_", " ")} ${formatValue(value)}` + (low !== null ? ` [${formatValue(low)}, ${formatValue(high)}]` : ""));
  const verdicts = scores.verdicts.map(([baseline, measure, verdict]) => `against ${baseline}, ${measure.replaceAll("_", " ")}: ${verdict}`);
  line.textContent = [who, name].filter(Boolean).join(" ") + (who || name ? ": " : "") + measures.join(" · ") +
    (verdicts.length ? ` (${verdicts.join("; ")})` : "");
  return line;
}

// Timings of the redraws, read by the benchmark: the last one and a count.
const explorer = { redraws: 0, lastRedrawMs: 0 };
window.explorer = explorer;

function timed(draw) {
  return (...args) => {
    const start = performance.now();
    draw(...args);
    explorer.lastRedrawMs = performance.now() - start;
    explorer.redraws += 1;
  };
}
