// The caption page: the words of a caption, and the map of the word hovered or pinned over the
// image. Data per image (see models/figures/explorer.py, caption_image_entry): named map sets, each
// (words, layers, heads, h, w) with its layer and head labels; head 0 of attention is the mean.

const $ = (id) => document.getElementById(id);
const LONGER_SIDE = 480;  // about this many pixels for the longer side of the image panel

const state = { image: 0, set: 0, layer: 0, head: 0, opacity: 0.6, smooth: false, hovered: null, pinned: null };
let entry, sets, picture, scale;

function chooseImage(index) {
  state.image = index;
  entry = DATA.images[index];
  sets = entry.sets.map((set) => ({ ...set, quantized: new QuantizedMaps(set.maps) }));
  picture = imageCanvas(entry);
  const [h, w] = entry.size;
  scale = Math.max(1, Math.round(LONGER_SIDE / Math.max(h, w)));
  $("map").width = w * scale; $("map").height = h * scale;
  $("title").textContent = `${entry.name}: ${entry.caption}`;
  const words = $("words");
  words.textContent = "";
  entry.words.forEach((word, k) => {
    const button = document.createElement("button");
    button.textContent = word;
    button.dataset.word = String(k);
    button.addEventListener("mouseenter", () => { state.hovered = k; redraw(); });
    button.addEventListener("mouseleave", () => { state.hovered = null; redraw(); });
    button.addEventListener("click", () => { state.pinned = state.pinned === k ? null : k; redraw(); });
    words.append(button);
  });
  const choices = $("sets");
  choices.textContent = "";
  sets.forEach((set, i) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio"; input.name = "set"; input.value = String(i);
    label.append(input, ` ${set.name}`);
    choices.append(label);
  });
  state.set = Math.min(state.set, sets.length - 1);
  choices.querySelectorAll("input")[state.set].checked = true;
  state.layer = entry.layer;
  state.hovered = state.pinned = null;
  const beams = $("beams");
  beams.textContent = "";
  if (entry.beams.length > 1) {
    beams.insertRow().innerHTML = "<th>beam</th><th>caption</th><th>log-probability</th><th>normalised</th>";
    entry.beams.forEach((beam, i) => {
      const row = beams.insertRow();
      if (i === 0) row.className = "chosen";
      for (const text of [i === 0 ? "chosen" : String(i), beam.caption, beam.score.toFixed(3), beam.normalized.toFixed(3)]) {
        row.insertCell().textContent = text;
      }
    });
  }
  chooseSet(state.set);
}

function chooseSet(index) {
  state.set = index;
  const set = sets[index];
  $("layer").max = String(set.layers.length - 1);
  fillSelect($("head"), set.heads.map((head) => (head === "mean" || head === "-" ? head : `head ${head}`)));
  redraw();
}

function shownWord() {
  return state.pinned !== null ? state.pinned : state.hovered !== null ? state.hovered : 0;
}

function draw() {
  const set = sets[state.set];
  const layer = Math.min(state.layer, set.layers.length - 1);
  const head = Math.min(state.head, set.heads.length - 1);
  const word = shownWord();
  const view = set.quantized.map(word, layer, head);
  const context = $("map").getContext("2d");
  const [h, w] = entry.size;
  context.drawImage(picture, 0, 0, w * scale, h * scale);
  paintMap(context, view, COLOURS.map, null, 0, 0, w * scale, h * scale, state.opacity, state.smooth);
  $("map-lo").textContent = formatValue(view.lo);
  $("map-hi").textContent = formatValue(view.hi);
  const where = set.layers.length > 1 ? `decoder layer ${set.layers[layer]} of 0-${set.layers.length - 1}` : "all layers";
  const heads = set.heads[head] === "mean" ? `mean of ${set.heads.length - 1} heads`
    : set.heads[head] === "-" ? "" : `head ${set.heads[head]}`;
  $("map-caption").textContent = `${set.name} of "${entry.words[word]}" (word ${word + 1} of ${entry.words.length}), ` +
    `${where}${heads ? ", " + heads : ""}; ${view.h}x${view.w} feature grid. ${entry.note}`;
  $("layer").disabled = set.layers.length < 2;
  $("head").disabled = set.heads.length < 2;
  $("head").value = String(head);
  $("layer").value = String(layer);
  $("layer-label").textContent = set.layers.length > 1 ? `${layer} of 0-${set.layers.length - 1}` : "all layers";
  for (const button of $("words").children) {
    const k = Number(button.dataset.word);
    button.classList.toggle("pinned", k === state.pinned);
    button.classList.toggle("shown", k === word);
  }
}
const redraw = timed(draw);

onArrowKeys((step) => {
  const layers = sets[state.set].layers.length;
  if (layers < 2) return;  // a map over all layers: the chosen layer stays for the other maps
  state.layer = Math.min(layers - 1, Math.max(0, state.layer + step));
  redraw();
});
$("layer").addEventListener("input", () => { state.layer = Number($("layer").value); redraw(); });
$("head").addEventListener("change", () => { state.head = Number($("head").value); redraw(); });
$("opacity").addEventListener("input", () => { state.opacity = Number($("opacity").value) / 100; redraw(); });
$("smooth").addEventListener("change", () => { state.smooth = $("smooth").checked; redraw(); });
$("sets").addEventListener("change", (event) => chooseSet(Number(event.target.value)));

paintColourBar($("map-bar"), COLOURS.map);
$("map-bar").style.width = "256px";
state.opacity = Number($("opacity").value) / 100;
setUpImageChoice($("image"), DATA.images.map((image) => image.name), chooseImage);
chooseImage(0);
explorer.state = state;
