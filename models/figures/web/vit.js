// The ViT page: an image's patch grid, one map over it per model, and each model's position-embedding
// similarity of the chosen patch. Data (see models/figures/explorer.py): DATA.models, one per model
// compared, with its similarity (P, gh, gw); per image and model: cls (layers, 1 + heads, gh, gw),
// rows (layers, 1 [+ heads], P, gh, gw), rollout (layers, gh, gw), the registry's other methods
// (K or 1, gh, gw) and head importance (layers, heads); head index 0 is the mean over heads.

const $ = (id) => document.getElementById(id);
const CANVAS_SIDE = 384;  // pixels of the image and map canvases; the similarity canvases are half
const GRID_LINE = "rgba(255, 255, 255, 0.35)";
const HOVERED = "#ffd400";
const PINNED = "#ff2d2d";
const COMPARED = DATA.models.length > 1;

// The map types: the three the page draws from every layer's attention, then the registry's others.
const VIEWS = [
  { id: "cls", label: "[class]-token attention" },
  { id: "from", label: "attention from the patch" },
  { id: "rollout", label: "rollout" },
].concat(DATA.methods.map((m) => ({ id: m.name, label: m.name, method: m.name, perClass: m.per_class })));
const SCORED = {};  // view id -> the method name the scores give it
for (const [name, view] of Object.entries(DATA.scored)) SCORED[view] = name;
for (const m of DATA.methods) SCORED[m.name] = m.name;

const state = {
  image: 0, view: "from", rank: 0, layer: Infinity, head: 0, opacity: 0.6, smooth: false,  // the last layer first
  hovered: null, cursor: null, pinned: null, sortHeads: false,
};
let image, models, grid, cell, smallCell;

function view() { return VIEWS.find((v) => v.id === state.view); }

function chooseImage(index) {
  state.image = index;
  image = DATA.images[index];
  models = image.models.map((entry, i) => {
    const meta = DATA.models[i];
    const maps = { similarity: meta.quantizedSimilarity };
    for (const key of ["cls", "rows", "rollout"]) maps[key] = new QuantizedMaps(entry[key]);
    const methods = {};
    for (const m of entry.methods) methods[m.name] = { maps: new QuantizedMaps(m.maps), captions: m.captions };
    return { meta, entry, maps, methods, picture: imageCanvas(entry.rgb ? entry : image.models[0]) };
  });
  grid = DATA.models[0].grid;
  const [gh, gw] = grid;
  cell = Math.max(2, Math.floor(CANVAS_SIDE / Math.max(gh, gw)));
  smallCell = Math.max(1, Math.floor(cell / 2));
  for (const canvas of document.querySelectorAll("canvas.big")) { canvas.width = gw * cell; canvas.height = gh * cell; }
  for (const canvas of document.querySelectorAll("canvas.small")) { canvas.width = gw * smallCell; canvas.height = gh * smallCell; }
  const top = (m) => `${m.entry.classes[0].name} (${(100 * m.entry.classes[0].prob).toFixed(1)}%)`;
  $("title").textContent = `${image.name}: predicted ` + models.map((m, i) => (COMPARED ? `${modelLabel(i)} ` : "") + top(m)).join(", ");
  const layers = DATA.models[0].layers;
  $("layer").max = String(layers - 1);
  state.layer = Math.min(state.layer, layers - 1);
  fillClasses();
  state.hovered = state.cursor = state.pinned = null;
  fillHeads();
  redraw();
}

function modelLabel(i) { return "AB"[i]; }

function fillClasses() {
  const classes = $("classes");
  classes.textContent = "";
  models[0].entry.classes.forEach((c, k) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "class"; input.value = String(k);
    const others = models.slice(1).map((m) => m.entry.classes[k]).map((o) => ` | ${o.index} ${o.name} (${(100 * o.prob).toFixed(1)}%)`);
    label.append(input, ` ${c.index} ${c.name} (${(100 * c.prob).toFixed(1)}%)${others.join("")}`);
    classes.append(label);
  });
  state.rank = Math.min(state.rank, models[0].entry.classes.length - 1);
}

// The head list: the mean, then the heads, in their order or by the first model's importance at the
// layer shown, each with its rank in every model.
function headOrder() {
  const heads = DATA.models[0].heads;
  const order = Array.from({ length: heads }, (_, h) => h);
  const importance = models[0].entry.importance;
  return state.sortHeads && importance ? rankHeads(importance[state.layer]) : order;
}

function fillHeads() {
  const heads = DATA.models[0].heads;
  const labels = ["mean of heads"], values = ["0"];
  const ranks = models.map((m) => m.entry.importance && headRanks(m.entry.importance[state.layer]));
  for (const h of headOrder()) {
    const rank = ranks.every((r) => r) ? ` · rank ${ranks.map((r) => r[h] + 1).join(" | ")} of ${heads}` : "";
    labels.push(`head ${h}${rank}`);
    values.push(String(h + 1));
  }
  const select = $("head");
  select.length = 0;
  labels.forEach((label, i) => select.add(new Option(label, values[i])));
  select.value = String(state.head);
}

// The patch the from-patch and similarity maps are for: the pinned one, else the hovered one, else
// the keyboard's, else the centre.
function queryPatch() {
  const [gh, gw] = grid;
  return state.pinned || state.hovered || state.cursor || { r: Math.floor(gh / 2), c: Math.floor(gw / 2) };
}

function shownMap(m) {
  const { r, c } = queryPatch();
  const patch = r * grid[1] + c;
  const heads = m.meta.heads, layers = m.meta.layers;
  const rowHeads = m.maps.rows.shape[1] > 1;
  const mean = `mean of ${heads} heads`;
  const head = state.head === 0 ? mean : `head ${state.head - 1}`;
  const layer = `layer ${state.layer} of 0-${layers - 1}`;
  const shown = view();
  switch (shown.id) {
    case "from":
      return {
        view: m.maps.rows.map(state.layer, rowHeads ? state.head : 0, patch),
        caption: `Attention from patch (${r}, ${c}) to the patches, ${layer}, ${rowHeads ? head : mean}`,
        note: rowHeads ? "" : "For this model the rows of every patch are embedded for the mean over heads only (page size).",
      };
    case "rollout":
      return {
        view: m.maps.rollout.map(state.layer),
        caption: `Attention rollout of the [class] token through layers 0-${state.layer}, heads fused by their mean`,
        note: "",
      };
    case "cls":
      return { view: m.maps.cls.map(state.layer, state.head), caption: `[class]-token attention to the patches, ${layer}, ${head}`, note: "" };
    default: {
      const method = m.methods[shown.method];
      const k = shown.perClass ? state.rank : 0;
      return { view: method.maps.map(k), caption: method.captions[k], note: "" };
    }
  }
}

// What the layer and head controls do for the map shown.
function uses() {
  const shown = view();
  const rowHeads = models.every((m) => m.maps.rows.shape[1] > 1);
  return {
    layer: ["cls", "from", "rollout"].includes(shown.id),
    head: shown.id === "cls" || (shown.id === "from" && rowHeads),
    patch: shown.id === "from",
    perClass: Boolean(shown.perClass),
  };
}

function outlinePatch(context, patch, colour, side) {
  if (patch) outline(context, patch.c * side, patch.r * side, side, side, colour);
}

function draw() {
  const [gh, gw] = grid;
  const width = gw * cell, height = gh * cell;
  const use = uses();
  const gridContext = $("grid").getContext("2d");
  gridContext.drawImage(models[0].picture, 0, 0, width, height);
  gridContext.beginPath();
  for (let r = 1; r < gh; r++) { gridContext.moveTo(0, r * cell + 0.5); gridContext.lineTo(width, r * cell + 0.5); }
  for (let c = 1; c < gw; c++) { gridContext.moveTo(c * cell + 0.5, 0); gridContext.lineTo(c * cell + 0.5, height); }
  gridContext.strokeStyle = GRID_LINE; gridContext.lineWidth = 2; gridContext.stroke();  // 2: still seen when the canvas is shown smaller
  outlinePatch(gridContext, state.hovered || state.cursor, HOVERED, cell);
  outlinePatch(gridContext, state.pinned, PINNED, cell);

  const query = queryPatch();
  const patch = query.r * gw + query.c;
  const notes = new Set();
  const readout = [];
  const at = state.hovered || state.cursor || state.pinned;
  models.forEach((m, i) => {
    const shown = shownMap(m);
    const context = $(`map-${i}`).getContext("2d");
    context.drawImage(m.picture, 0, 0, width, height);
    paintMap(context, shown.view, COLOURS.map, null, 0, 0, width, height, state.opacity, state.smooth);
    if (use.patch) outlinePatch(context, query, state.pinned ? PINNED : HOVERED, cell);
    $(`map-lo-${i}`).textContent = formatValue(shown.view.lo);
    $(`map-hi-${i}`).textContent = formatValue(shown.view.hi);
    $(`map-caption-${i}`).textContent = shown.caption;
    if (shown.note) notes.add(shown.note);
    const similarity = $(`similarity-${i}`).getContext("2d");
    const row = m.maps.similarity.map(patch);
    paintMap(similarity, row, COLOURS.similarity, [-1, 1], 0, 0, gw * smallCell, gh * smallCell, 1, false);
    outline(similarity, query.c * smallCell, query.r * smallCell, smallCell, smallCell, PINNED);
    $(`similarity-caption-${i}`).textContent =
      `${COMPARED ? modelLabel(i) + ": p" : "P"}osition-embedding cosine similarity of patch (${query.r}, ${query.c}) to every patch`;
    if (at) {
      const cellIndex = at.r * gw + at.c;
      readout.push(`${COMPARED ? modelLabel(i) + " " : ""}map ${formatValue(shown.view.value(cellIndex))}` +
        ` · similarity ${formatValue(m.maps.similarity.map(patch).value(cellIndex))}`);
    }
    paintImportance($(`importance-${i}`), m.entry.importance, use.head ? state.layer : null, state.head - 1);
  });
  $("readout").textContent = at ? `patch (${at.r}, ${at.c}): ${readout.join("; ")}` : "";
  $("note").textContent = [...notes].join(" ");
  $("hint").textContent = use.patch
    ? "Hovering or moving to a patch draws what that patch attends to, and its position-embedding similarity."
    : "This map does not depend on the patch: hovering or moving to a patch changes only the similarity panel and the values read out (\"attention from the patch\" follows it).";
  $("layer").disabled = !use.layer;
  $("head").disabled = !use.head;
  $("sort-heads").disabled = !use.head;
  for (const input of document.querySelectorAll("input[name=class]")) input.disabled = !use.perClass;
  $("head").value = use.head ? String(state.head) : "0";  // what is drawn: the mean, or heads fused
  $("layer").value = String(state.layer);
  $("layer-label").textContent = use.layer ? `${state.layer} of 0-${DATA.models[0].layers - 1}` : "all layers";
  for (const input of document.querySelectorAll("input[name=view]")) input.checked = input.value === state.view;
  for (const input of document.querySelectorAll("input[name=class]")) input.checked = Number(input.value) === state.rank;
}
const redraw = timed(draw);

function patchAt(event, canvas) {
  const [gh, gw] = grid;
  const box = canvas.getBoundingClientRect();
  const r = Math.floor((event.clientY - box.top) / box.height * gh);
  const c = Math.floor((event.clientX - box.left) / box.width * gw);
  return r >= 0 && r < gh && c >= 0 && c < gw ? { r, c } : null;
}

const samePatch = (a, b) => a && b && a.r === b.r && a.c === b.c;

function pin(patch) {
  state.pinned = samePatch(patch, state.pinned) ? null : patch;
  redraw();
}

function setLayer(layer) {
  if (!uses().layer) return;  // a map over all layers: the layer stays for the others
  const next = Math.min(DATA.models[0].layers - 1, Math.max(0, layer));
  if (next === state.layer) return;
  state.layer = next;
  fillHeads();
  redraw();
}

function stepHead(step) {
  if (!uses().head) return;
  const order = [0].concat(headOrder().map((h) => h + 1));
  const at = order.indexOf(state.head);
  state.head = order[Math.min(order.length - 1, Math.max(0, at + step))];
  redraw();
}

function stepView(step) {
  const at = VIEWS.findIndex((v) => v.id === state.view);
  state.view = VIEWS[(at + step + VIEWS.length) % VIEWS.length].id;
  redraw();
}

function stepClass(step) {
  if (!uses().perClass) return;
  const count = models[0].entry.classes.length;
  state.rank = (state.rank + step + count) % count;
  redraw();
}

// The panels: the input's grid (in the page), then each model's map and its similarity panel.
function buildPanels() {
  const panels = $("panels");
  DATA.models.forEach((meta, i) => {
    meta.quantizedSimilarity = new QuantizedMaps(meta.similarity);
    const figure = document.createElement("figure");
    figure.className = "big";
    figure.innerHTML = (COMPARED ? `<div class="model"><b>${modelLabel(i)}</b> <span></span></div>` : "") +
      `<canvas id="map-${i}" class="view big"></canvas>` +
      `<div class="bar"><span id="map-lo-${i}"></span><canvas class="colour-bar"></canvas><span id="map-hi-${i}"></span></div>` +
      `<figcaption id="map-caption-${i}"></figcaption>`;
    if (COMPARED) figure.querySelector(".model span").textContent = meta.title;
    panels.append(figure);
  });
  DATA.models.forEach((meta, i) => {
    const figure = document.createElement("figure");
    figure.className = "small";
    figure.innerHTML = `<canvas id="similarity-${i}" class="view small"></canvas>` +
      `<div class="bar"><span>-1</span><canvas class="similarity-bar"></canvas><span>1</span></div>` +
      `<figcaption id="similarity-caption-${i}"></figcaption>`;
    panels.append(figure);
    const overview = document.createElement("figure");
    overview.innerHTML = `<canvas id="importance-${i}"></canvas><figcaption>${COMPARED ? modelLabel(i) + ": h" : "H"}ead importance, ` +
      "layers down, heads across, each layer scaled to its most important head</figcaption>";
    $("importance").append(overview);
  });
  $("grid").classList.add("big");
  if (COMPARED) $("grid").insertAdjacentHTML("beforebegin", '<div class="model">the input</div>');
  for (const canvas of document.querySelectorAll(".colour-bar")) { paintColourBar(canvas, COLOURS.map); canvas.style.width = "180px"; }
  for (const canvas of document.querySelectorAll(".similarity-bar")) { paintColourBar(canvas, COLOURS.similarity); canvas.style.width = "100px"; }
  const choices = $("views");
  for (const v of VIEWS) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "view"; input.value = v.id;
    label.append(input, ` ${v.label}`);
    const scored = SCORED[v.id];
    for (const [i, meta] of DATA.models.entries()) {
      if (scored && meta.scores && meta.scores.methods[scored]) {
        label.append(scoresLine(meta.scores.methods[scored], COMPARED ? modelLabel(i) : "", scored !== v.id ? scored : ""));
      }
    }
    choices.append(label);
  }
  const listed = new Set(Object.values(SCORED));
  DATA.models.forEach((meta, i) => {
    if (!meta.scores) return;
    for (const [name, scores] of Object.entries(meta.scores.methods)) {
      if (!listed.has(name)) $("other-scores").append(scoresLine(scores, COMPARED ? modelLabel(i) : "", name));
    }
    const source = document.createElement("div");
    source.textContent = `${COMPARED ? modelLabel(i) + ": s" : "S"}cores from ${meta.scores.file} (each image's predicted class)`;
    $("other-scores").append(source);
  });
}

buildPanels();
for (const canvas of document.querySelectorAll("canvas.view")) {
  canvas.addEventListener("mousemove", (event) => {
    const patch = patchAt(event, canvas);
    if (!samePatch(patch, state.hovered)) { state.hovered = patch; redraw(); }
  });
  canvas.addEventListener("mouseleave", () => { state.hovered = null; redraw(); });
  canvas.addEventListener("click", (event) => pin(patchAt(event, canvas)));
}
const gridCanvas = $("grid");
gridCanvas.addEventListener("focus", () => { state.cursor = state.cursor || queryPatch(); redraw(); });
gridCanvas.addEventListener("blur", () => { state.cursor = null; redraw(); });
gridCanvas.addEventListener("keydown", (event) => {
  const move = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[event.key];
  if (move) {
    event.preventDefault();
    const at = state.cursor || queryPatch();
    state.cursor = { r: Math.min(grid[0] - 1, Math.max(0, at.r + move[0])), c: Math.min(grid[1] - 1, Math.max(0, at.c + move[1])) };
    redraw();
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    pin(state.cursor || queryPatch());
  }
});

onPageKeys({
  release: () => { if (state.pinned) { state.pinned = null; redraw(); } },
  layer: (step) => setLayer(state.layer + step),
  head: stepHead,
  map: stepView,
  klass: stepClass,
});
$("layer").addEventListener("input", () => setLayer(Number($("layer").value)));
$("head").addEventListener("change", () => { state.head = Number($("head").value); redraw(); });
$("sort-heads").addEventListener("change", () => { state.sortHeads = $("sort-heads").checked; fillHeads(); redraw(); });
$("opacity").addEventListener("input", () => { state.opacity = Number($("opacity").value) / 100; redraw(); });
$("smooth").addEventListener("change", () => { state.smooth = $("smooth").checked; redraw(); });
$("views").addEventListener("change", (event) => { state.view = event.target.value; redraw(); });
$("classes").addEventListener("change", (event) => { state.rank = Number(event.target.value); redraw(); });

state.opacity = Number($("opacity").value) / 100;
setUpImageChoice($("image"), DATA.images.map((entry) => entry.name), chooseImage);
chooseImage(0);
explorer.state = state;
