// The ViT page: an image's patch grid, one map over it, and the position-embedding similarity of
// the patch under the cursor. Data per image (see models/figures/explorer.py, vit_image_entry):
// cls (layers, 1 + heads, gh, gw), rows (layers, 1 [+ heads], P, gh, gw), rollout (layers, gh, gw),
// relevancy (K, gh, gw), similarity (P, gh, gw); head index 0 is the mean over heads.

const $ = (id) => document.getElementById(id);
const CANVAS_SIDE = 384;  // pixels of the image and map panels; the similarity panel is half
const GRID_LINE = "rgba(255, 255, 255, 0.35)";
const HOVERED = "#ffd400";
const PINNED = "#ff2d2d";

const state = {
  image: 0, method: "cls", rank: 0, layer: Infinity, head: 0, opacity: 0.6, smooth: false,  // the last layer first
  hovered: null, pinned: null,
};
let entry, maps, picture, cell, smallCell;

function methodChoice() {
  return state.method === "relevancy" ? `relevancy:${state.rank}` : state.method;
}

function chooseImage(index) {
  state.image = index;
  entry = DATA.images[index];
  maps = {};
  for (const key of ["cls", "rows", "rollout", "relevancy", "similarity"]) maps[key] = new QuantizedMaps(entry[key]);
  picture = imageCanvas(entry);
  const [gh, gw] = entry.grid;
  cell = Math.max(2, Math.floor(CANVAS_SIDE / Math.max(gh, gw)));
  smallCell = Math.max(1, Math.floor(cell / 2));
  for (const id of ["grid", "map"]) { $(id).width = gw * cell; $(id).height = gh * cell; }
  $("similarity").width = gw * smallCell; $("similarity").height = gh * smallCell;
  const top = entry.classes[0];
  $("title").textContent = `${entry.name}: predicted ${top.name} (${(100 * top.prob).toFixed(1)}%)`;
  $("layer").max = String(entry.layers - 1);
  state.layer = Math.min(state.layer, entry.layers - 1);
  fillSelect($("head"), ["mean"].concat(Array.from({ length: entry.heads }, (_, h) => `head ${h}`)));
  state.head = Math.min(state.head, entry.heads);
  const classes = $("classes");
  classes.textContent = "";
  entry.classes.forEach((c, k) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "method"; input.value = `relevancy:${k}`;
    label.append(input, ` ${c.index} ${c.name} (${(100 * c.prob).toFixed(1)}%)`);
    classes.append(label);
  });
  state.rank = Math.min(state.rank, entry.classes.length - 1);
  state.hovered = state.pinned = null;
  for (const input of document.querySelectorAll("input[name=method]")) input.checked = input.value === methodChoice();
  redraw();
}

// The patch the from-patch and similarity maps are for: the pinned one, else the hovered one,
// else the centre.
function queryPatch() {
  const [gh, gw] = entry.grid;
  return state.pinned || state.hovered || { r: Math.floor(gh / 2), c: Math.floor(gw / 2) };
}

function shownMap() {
  const { r, c } = queryPatch();
  const patch = r * entry.grid[1] + c;
  const rowHeads = maps.rows.shape[1] > 1;
  const mean = `mean of ${entry.heads} heads`;
  const head = state.head === 0 ? mean : `head ${state.head - 1}`;
  const layer = `layer ${state.layer} of 0-${entry.layers - 1}`;
  switch (state.method) {
    case "from":
      return {
        view: maps.rows.map(state.layer, rowHeads ? state.head : 0, patch),
        caption: `Attention from patch (${r}, ${c}) to the patches, ${layer}, ${rowHeads ? head : mean}`,
        note: rowHeads ? "" : "For this model the rows of every patch are embedded for the mean over heads only (page size).",
        usesLayer: true, usesHead: rowHeads,
      };
    case "rollout":
      return {
        view: maps.rollout.map(state.layer),
        caption: `Attention rollout of the [class] token through layers 0-${state.layer}, heads fused by their mean`,
        note: "", usesLayer: true, usesHead: false,
      };
    case "relevancy": {
      const c = entry.classes[state.rank];
      return {
        view: maps.relevancy.map(state.rank),
        caption: `Relevancy for class ${c.index} ${c.name} (${(100 * c.prob).toFixed(1)}%), all ${entry.layers} layers`,
        note: "", usesLayer: false, usesHead: false,
      };
    }
    default:
      return {
        view: maps.cls.map(state.layer, state.head),
        caption: `[class]-token attention to the patches, ${layer}, ${head}`,
        note: "", usesLayer: true, usesHead: true,
      };
  }
}

function drawGrid(context, patch, colour) {
  if (patch) outline(context, patch.c * cell, patch.r * cell, cell, cell, colour);
}

function draw() {
  const [gh, gw] = entry.grid;
  const side = { w: gw * cell, h: gh * cell };
  const grid = $("grid").getContext("2d");
  grid.drawImage(picture, 0, 0, side.w, side.h);
  grid.beginPath();
  for (let r = 1; r < gh; r++) { grid.moveTo(0, r * cell + 0.5); grid.lineTo(side.w, r * cell + 0.5); }
  for (let c = 1; c < gw; c++) { grid.moveTo(c * cell + 0.5, 0); grid.lineTo(c * cell + 0.5, side.h); }
  grid.strokeStyle = GRID_LINE; grid.lineWidth = 1; grid.stroke();
  drawGrid(grid, state.hovered, HOVERED);
  drawGrid(grid, state.pinned, PINNED);

  const shown = shownMap();
  const map = $("map").getContext("2d");
  map.drawImage(picture, 0, 0, side.w, side.h);
  paintMap(map, shown.view, COLOURS.map, null, 0, 0, side.w, side.h, state.opacity, state.smooth);
  if (state.method === "from") drawGrid(map, queryPatch(), state.pinned ? PINNED : HOVERED);
  $("map-lo").textContent = formatValue(shown.view.lo);
  $("map-hi").textContent = formatValue(shown.view.hi);
  $("map-caption").textContent = shown.caption;
  $("note").textContent = shown.note;
  $("layer").disabled = !shown.usesLayer;
  $("head").disabled = !shown.usesHead;
  $("head").value = shown.usesHead ? String(state.head) : "0";  // what is drawn: the mean, or heads fused
  $("layer").value = String(state.layer);
  $("layer-label").textContent = shown.usesLayer ? `${state.layer} of 0-${entry.layers - 1}` : "all layers";

  const query = queryPatch();
  const patch = query.r * gw + query.c;
  const similarity = $("similarity").getContext("2d");
  paintMap(similarity, maps.similarity.map(patch), COLOURS.similarity, [-1, 1], 0, 0,
    gw * smallCell, gh * smallCell, 1, false);
  outline(similarity, query.c * smallCell, query.r * smallCell, smallCell, smallCell, PINNED);
  $("similarity-caption").textContent =
    `Position-embedding cosine similarity of patch (${query.r}, ${query.c}) to every patch`;

  const at = state.hovered || state.pinned;
  $("readout").textContent = at
    ? `patch (${at.r}, ${at.c}) · map value ${formatValue(shown.view.value(at.r * gw + at.c))}` +
      ` · similarity ${formatValue(maps.similarity.map(patch).value(at.r * gw + at.c))}`
    : "";
}
const redraw = timed(draw);

function patchAt(event, canvas) {
  const [gh, gw] = entry.grid;
  const box = canvas.getBoundingClientRect();
  const r = Math.floor((event.clientY - box.top) / box.height * gh);
  const c = Math.floor((event.clientX - box.left) / box.width * gw);
  return r >= 0 && r < gh && c >= 0 && c < gw ? { r, c } : null;
}

const samePatch = (a, b) => a && b && a.r === b.r && a.c === b.c;

for (const id of ["grid", "map", "similarity"]) {
  const canvas = $(id);
  canvas.addEventListener("mousemove", (event) => {
    const patch = patchAt(event, canvas);
    if (!samePatch(patch, state.hovered)) { state.hovered = patch; redraw(); }
  });
  canvas.addEventListener("mouseleave", () => { state.hovered = null; redraw(); });
  canvas.addEventListener("click", (event) => {
    const patch = patchAt(event, canvas);
    state.pinned = samePatch(patch, state.pinned) ? null : patch;
    redraw();
  });
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.pinned) { state.pinned = null; redraw(); }
});
onArrowKeys((step) => {
  state.layer = Math.min(entry.layers - 1, Math.max(0, state.layer + step));
  redraw();
});
$("layer").addEventListener("input", () => { state.layer = Number($("layer").value); redraw(); });
$("head").addEventListener("change", () => { state.head = Number($("head").value); redraw(); });
$("opacity").addEventListener("input", () => { state.opacity = Number($("opacity").value) / 100; redraw(); });
$("smooth").addEventListener("change", () => { state.smooth = $("smooth").checked; redraw(); });
document.querySelector(".controls").addEventListener("change", (event) => {
  if (event.target.name !== "method") return;
  const [method, rank] = event.target.value.split(":");
  state.method = method;
  if (rank !== undefined) state.rank = Number(rank);
  redraw();
});

paintColourBar($("map-bar"), COLOURS.map);
paintColourBar($("similarity-bar"), COLOURS.similarity);
$("map-bar").style.width = "256px";
$("similarity-bar").style.width = "128px";
state.opacity = Number($("opacity").value) / 100;
setUpImageChoice($("image"), DATA.images.map((image) => image.name), chooseImage);
chooseImage(0);
explorer.state = state;
