// The caption page: each captioner's caption as words, and the map of the word hovered, focused or
// pinned over the image. Data (see models/figures/explorer.py): DATA.models, one per captioner
// compared; per image and captioner: the words, named map sets (words, layers, heads, h, w) with
// their layer and head labels (head 0 of attention is the mean), the beams and head importance
// (layers, heads). A word chosen in one caption shows, in the other, the same word (its same
// occurrence) where that caption has it.

const $ = (id) => document.getElementById(id);
const LONGER_SIDE = 480;  // about this many pixels for the longer side of an image panel
const COMPARED = DATA.models.length > 1;

const state = {
  image: 0, set: 0, layer: DATA.layer, head: 0, opacity: 0.6, smooth: false, sortHeads: false,
  hovered: null, cursor: null, pinned: null,  // each null or { model, word }
};
let image, models;

function modelLabel(i) { return "AB"[i]; }

function chooseImage(index) {
  state.image = index;
  image = DATA.images[index];
  models = image.models.map((entry, i) => {
    const sets = entry.sets.map((set) => ({ ...set, quantized: new QuantizedMaps(set.maps) }));
    const source = entry.rgb ? entry : image.models[0];
    return { entry, sets, picture: imageCanvas(source), size: source.size };
  });
  $("title").textContent = `${image.name}: ` + models.map((m, i) => (COMPARED ? `${modelLabel(i)} ` : "") + `"${m.entry.caption}"`).join(", ");
  models.forEach((m, i) => {
    const [h, w] = m.size;
    const scale = Math.max(1, Math.round(LONGER_SIDE / Math.max(h, w)));
    $(`map-${i}`).width = w * scale; $(`map-${i}`).height = h * scale;
    const words = $(`words-${i}`);
    words.textContent = "";
    m.entry.words.forEach((word, k) => {
      const button = document.createElement("button");
      button.textContent = word;
      button.dataset.word = String(k);
      button.tabIndex = k === 0 ? 0 : -1;
      button.classList.toggle("shared", COMPARED && models.some((o, j) => j !== i && o.entry.words.includes(word)));
      button.addEventListener("mouseenter", () => { state.hovered = { model: i, word: k }; redraw(); });
      button.addEventListener("mouseleave", () => { state.hovered = null; redraw(); });
      button.addEventListener("focus", () => { state.cursor = { model: i, word: k }; redraw(); });
      button.addEventListener("click", () => pin({ model: i, word: k }));
      words.append(button);
    });
    fillBeams($(`beams-${i}`), m.entry.beams);
  });
  state.set = Math.min(state.set, models[0].sets.length - 1);
  state.hovered = state.cursor = state.pinned = null;
  chooseSet(state.set);
}

function fillBeams(table, beams) {
  table.textContent = "";
  if (beams.length < 2) return;
  table.insertRow().innerHTML = "<th>beam</th><th>caption</th><th>log-probability</th><th>normalised</th>";
  beams.forEach((beam, i) => {
    const row = table.insertRow();
    if (i === 0) row.className = "chosen";
    for (const text of [i === 0 ? "chosen" : String(i), beam.caption, beam.score.toFixed(3), beam.normalized.toFixed(3)]) {
      row.insertCell().textContent = text;
    }
  });
}

function currentSet(m) { return m.sets[Math.min(state.set, m.sets.length - 1)]; }

function chooseSet(index) {
  state.set = index;
  const set = currentSet(models[0]);
  $("layer").max = String(set.layers.length - 1);
  fillHeads();
  redraw();
}

function stepSet(step) {
  const count = models[0].sets.length;
  chooseSet((state.set + step + count) % count);
}

function layerOf(set) { return Math.min(state.layer, set.layers.length - 1); }

// The head list of the map set shown: the mean, then the heads, in their order or by the first
// captioner's importance at the layer shown, each with its rank in every captioner.
function headOrder() {
  const set = currentSet(models[0]);
  const heads = set.heads.length - 1;
  const importance = models[0].entry.importance;
  if (heads < 1) return [];
  return state.sortHeads && importance ? rankHeads(importance[layerOf(set)]) : Array.from({ length: heads }, (_, h) => h);
}

function fillHeads() {
  const set = currentSet(models[0]);
  const select = $("head");
  select.length = 0;
  if (set.heads.length < 2) { select.add(new Option(set.heads[0], "0")); return; }
  select.add(new Option(`mean of ${set.heads.length - 1} heads`, "0"));
  const ranks = models.map((m) => m.entry.importance && headRanks(m.entry.importance[layerOf(set)]));
  for (const h of headOrder()) {
    const rank = ranks.every((r) => r) ? ` · rank ${ranks.map((r) => r[h] + 1).join(" | ")} of ${set.heads.length - 1}` : "";
    select.add(new Option(`head ${h}${rank}`, String(h + 1)));
  }
  select.value = String(Math.min(state.head, set.heads.length - 1));
}

// The word of captioner i to show: the chosen word in its own caption, else the same occurrence of
// the same word in this one (null where it has none); with nothing chosen, the first word.
function shownWord(i) {
  const chosen = state.pinned || state.hovered || state.cursor;
  if (!chosen) return { word: 0, chosen: false };
  if (chosen.model === i) return { word: chosen.word, chosen: true };
  const words = models[chosen.model].entry.words;
  const token = words[chosen.word];
  const occurrence = words.slice(0, chosen.word).filter((w) => w === token).length;
  const positions = models[i].entry.words.flatMap((w, k) => (w === token ? [k] : []));
  return { word: occurrence < positions.length ? positions[occurrence] : null, chosen: true, token };
}

function draw() {
  const set0 = currentSet(models[0]);
  models.forEach((m, i) => {
    const set = currentSet(m);
    const layer = layerOf(set);
    const head = Math.min(state.head, set.heads.length - 1);
    const { word, chosen, token } = shownWord(i);
    const canvas = $(`map-${i}`);
    const context = canvas.getContext("2d");
    context.drawImage(m.picture, 0, 0, canvas.width, canvas.height);
    const who = COMPARED ? `${modelLabel(i)}'s ` : "";
    if (word === null) {
      $(`map-lo-${i}`).textContent = $(`map-hi-${i}`).textContent = "";
      $(`map-caption-${i}`).textContent = `"${token}" is not in ${who || "this "}caption: no map.`;
    } else {
      const view = set.quantized.map(word, layer, head);
      paintMap(context, view, COLOURS.map, null, 0, 0, canvas.width, canvas.height, state.opacity, state.smooth);
      $(`map-lo-${i}`).textContent = formatValue(view.lo);
      $(`map-hi-${i}`).textContent = formatValue(view.hi);
      const where = set.layers.length > 1 ? `decoder layer ${set.layers[layer]} of 0-${set.layers.length - 1}` : "all layers";
      const heads = set.heads[head] === "mean" ? `mean of ${set.heads.length - 1} heads`
        : set.heads[head] === "-" ? "" : `head ${set.heads[head]}`;
      const which = chosen ? "" : " (the first word, until a word is hovered, focused or pinned)";
      $(`map-caption-${i}`).textContent = `${set.name} of "${m.entry.words[word]}" (word ${word + 1} of ` +
        `${m.entry.words.length})${which}, ${where}${heads ? ", " + heads : ""}; ${view.h}x${view.w} feature grid.`;
    }
    const pinned = state.pinned && state.pinned.model === i ? state.pinned.word : null;
    for (const button of $(`words-${i}`).children) {
      const k = Number(button.dataset.word);
      button.classList.toggle("pinned", k === pinned);
      button.classList.toggle("shown", chosen && k === word);
    }
    paintImportance($(`importance-${i}`), m.entry.importance, set.heads.length > 1 ? layer : null, head - 1);
    showScores(i);
  });
  $("layer").disabled = set0.layers.length < 2;
  $("head").disabled = set0.heads.length < 2;
  $("sort-heads").disabled = set0.heads.length < 2;
  $("head").value = String(Math.min(state.head, set0.heads.length - 1));
  $("layer").value = String(layerOf(set0));
  $("layer-label").textContent = set0.layers.length > 1 ? `${layerOf(set0)} of 0-${set0.layers.length - 1}` : "all layers";
  for (const input of document.querySelectorAll("input[name=view]")) input.checked = Number(input.value) === state.set;
}
const redraw = timed(draw);

// The scores beside each map set's name: cross-attention's are those of the layer shown.
function scoredName(set, layer) { return set.layers.length > 1 ? `attention@${set.layers[layer]}` : set.name; }

function showScores(i) {
  const meta = DATA.models[i];
  if (!meta.scores) return;
  for (const slot of document.querySelectorAll(`#views .scores-${i}`)) {
    const set = models[i].sets[Number(slot.dataset.set)];
    const name = scoredName(set, layerOf(set));
    slot.textContent = "";
    if (meta.scores.methods[name]) slot.append(scoresLine(meta.scores.methods[name], COMPARED ? modelLabel(i) : "", name));
  }
}

function pin(choice) {
  const same = state.pinned && state.pinned.model === choice.model && state.pinned.word === choice.word;
  state.pinned = same ? null : choice;
  redraw();
}

function setLayer(layer) {
  const layers = currentSet(models[0]).layers.length;
  if (layers < 2) return;  // a map over all layers: the layer stays for the other maps
  const next = Math.min(layers - 1, Math.max(0, layer));
  if (next === state.layer) return;
  state.layer = next;
  fillHeads();
  redraw();
}

function stepHead(step) {
  const set = currentSet(models[0]);
  if (set.heads.length < 2) return;
  const order = [0].concat(headOrder().map((h) => h + 1));
  const at = order.indexOf(Math.min(state.head, set.heads.length - 1));
  state.head = order[Math.min(order.length - 1, Math.max(0, at + step))];
  redraw();
}

// The panels of each captioner: its words, its map and its beams.
function buildPanels() {
  DATA.models.forEach((meta, i) => {
    const figure = document.createElement("figure");
    figure.className = "caption";
    figure.innerHTML = (COMPARED ? `<div class="model"><b>${modelLabel(i)}</b> <span></span></div>` : "") +
      `<div class="words" id="words-${i}" data-arrow-keys role="toolbar" aria-label="the words of the caption"></div>` +
      `<canvas id="map-${i}" class="view"></canvas>` +
      `<div class="bar"><span id="map-lo-${i}"></span><canvas class="colour-bar"></canvas><span id="map-hi-${i}"></span></div>` +
      `<figcaption id="map-caption-${i}"></figcaption><div class="beams-box"><table class="beams" id="beams-${i}"></table></div>`;
    if (COMPARED) figure.querySelector(".model span").textContent = meta.title;
    $("panels").append(figure);
    const words = figure.querySelector(".words");
    words.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (!step || !(event.target instanceof HTMLButtonElement)) return;
      event.preventDefault();
      const buttons = [...words.children];
      const next = buttons[Math.min(buttons.length - 1, Math.max(0, buttons.indexOf(event.target) + step))];
      for (const button of buttons) button.tabIndex = button === next ? 0 : -1;
      next.focus();
    });
    words.addEventListener("focusout", (event) => {
      if (!words.contains(event.relatedTarget)) { state.cursor = null; redraw(); }
    });
    const overview = document.createElement("figure");
    overview.innerHTML = `<canvas id="importance-${i}"></canvas><figcaption>${COMPARED ? modelLabel(i) + ": c" : "C"}ross-attention ` +
      "head importance, layers down, heads across, each layer scaled to its most important head</figcaption>";
    $("importance").append(overview);
  });
  for (const canvas of document.querySelectorAll(".colour-bar")) { paintColourBar(canvas, COLOURS.map); canvas.style.width = "200px"; }
  const first = DATA.images[0].models[0];
  first.sets.forEach((set, index) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "view"; input.value = String(index);
    label.append(input, ` ${set.name}`);
    DATA.models.forEach((_, i) => {
      const slot = document.createElement("span");
      slot.className = `scores-${i}`;
      slot.dataset.set = String(index);
      label.append(slot);
    });
    $("views").append(label);
  });
  DATA.models.forEach((meta, i) => {
    if (!meta.scores) return;
    const shown = (name) => name.startsWith("attention@") || first.sets.some((set) => set.name === name);
    for (const [name, scores] of Object.entries(meta.scores.methods)) {
      if (!shown(name)) $("other-scores").append(scoresLine(scores, COMPARED ? modelLabel(i) : "", name));
    }
    const source = document.createElement("div");
    source.textContent = `${COMPARED ? modelLabel(i) + ": s" : "S"}cores from ${meta.scores.file}`;
    $("other-scores").append(source);
  });
}

buildPanels();
onPageKeys({
  release: () => { if (state.pinned) { state.pinned = null; redraw(); } },
  layer: (step) => setLayer(layerOf(currentSet(models[0])) + step),
  head: stepHead,
  map: stepSet,
  klass: () => {},
});
$("layer").addEventListener("input", () => setLayer(Number($("layer").value)));
$("head").addEventListener("change", () => { state.head = Number($("head").value); redraw(); });
$("sort-heads").addEventListener("change", () => { state.sortHeads = $("sort-heads").checked; fillHeads(); redraw(); });
$("opacity").addEventListener("input", () => { state.opacity = Number($("opacity").value) / 100; redraw(); });
$("smooth").addEventListener("change", () => { state.smooth = $("smooth").checked; redraw(); });
$("views").addEventListener("change", (event) => chooseSet(Number(event.target.value)));
$("hint").textContent = "Hover a word, or focus a caption and move with the arrow keys, to see its map" +
  (COMPARED ? " and the same word's map in the other caption (dashed words are in both)" : "") + "; click or Enter pins it.";

state.opacity = Number($("opacity").value) / 100;
setUpImageChoice($("image"), DATA.images.map((entry) => entry.name), chooseImage);
chooseImage(0);
explorer.state = state;
