// The explorer page: talks to vaegen serve's JSON API and draws on canvases.
// Plain JavaScript, no build step and nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
// What the browser tests and the latency benchmark read: pointer event -> new pixels, in ms.
window.vaegen = { ready: false, latencies: [], decodes: 0, encodes: 0, scores: 0 };

const state = { info: null, z: null, xy: null, ends: { a: null, b: null }, path: null, drawn: null,
  frames: [], seed: 1, dots: null };

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function status(text) { $("status").textContent = text; }

// ------------------------------------------------------------------ pixels

// An image from the server ({channels, height, width, data: base64 uint8 CHW}) drawn to fill a canvas.
function drawPixels(canvas, image, x = 0, w = canvas.width) {
  const bytes = Uint8Array.from(atob(image.data), (c) => c.charCodeAt(0));
  const plane = image.height * image.width;
  const small = new ImageData(image.width, image.height);
  for (let i = 0; i < plane; i++) {
    const gray = image.channels === 1;
    small.data[4 * i] = bytes[i];
    small.data[4 * i + 1] = gray ? bytes[i] : bytes[plane + i];
    small.data[4 * i + 2] = gray ? bytes[i] : bytes[2 * plane + i];
    small.data[4 * i + 3] = 255;
  }
  const scratch = document.createElement("canvas");
  scratch.width = image.width;
  scratch.height = image.height;
  scratch.getContext("2d").putImageData(small, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, x, 0, w, canvas.height);
}

// ------------------------------------------------------------------ the map

function toCanvas(xy) {
  const [x0, x1, y0, y1] = state.info.bounds, c = $("map");
  return [(xy[0] - x0) / (x1 - x0) * c.width, (1 - (xy[1] - y0) / (y1 - y0)) * c.height];
}

function fromCanvas(px, py) {
  const [x0, x1, y0, y1] = state.info.bounds, c = $("map");
  return [x0 + px / c.width * (x1 - x0), y0 + (1 - py / c.height) * (y1 - y0)];
}

function colorOf(label) {
  const colors = state.info.colors;
  return label >= 0 && label < colors.length ? colors[label] : state.info.unlabelled;
}

// The dots are drawn once into their own canvas; each update copies them and adds the markers.
function drawDots() {
  const c = $("map"), dots = document.createElement("canvas");
  dots.width = c.width;
  dots.height = c.height;
  const ctx = dots.getContext("2d"), p = state.info.points;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.globalAlpha = 0.55;
  for (let i = 0; i < p.x.length; i++) {
    const [px, py] = toCanvas([p.x[i], p.y[i]]);
    ctx.fillStyle = colorOf(p.label[i]);
    ctx.fillRect(px - 1.2, py - 1.2, 2.4, 2.4);
  }
  state.dots = dots;
}

function marker(ctx, xy, color, label) {
  const [px, py] = toCanvas(xy);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.arc(px, py, 7, 0, 2 * Math.PI);
  ctx.stroke();
  if (label) {
    ctx.fillStyle = color;
    ctx.font = "bold 13px sans-serif";
    ctx.fillText(label, px + 9, py - 8);
  }
}

function drawMap() {
  const ctx = $("map").getContext("2d");
  ctx.drawImage(state.dots, 0, 0);
  if (state.path) {
    ctx.strokeStyle = "#222";
    ctx.lineWidth = 2;
    ctx.beginPath();
    state.path.forEach((xy, i) => (i ? ctx.lineTo(...toCanvas(xy)) : ctx.moveTo(...toCanvas(xy))));
    ctx.stroke();
  }
  for (const end of ["a", "b"]) if (state.ends[end]) marker(ctx, state.ends[end].xy, "#555", end.toUpperCase());
  if (state.drawn) marker(ctx, state.drawn, "#d62728", "drawn");
  if (state.xy) {
    const [px, py] = toCanvas(state.xy);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(px - 10, py); ctx.lineTo(px + 10, py); ctx.moveTo(px, py - 10); ctx.lineTo(px, py + 10);
    ctx.stroke();
  }
}

function buildLegend() {
  const legend = $("legend");
  state.info.map_classes.forEach((name, k) => {
    const item = document.createElement("li"), swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = state.info.colors[k];
    item.append(swatch, document.createTextNode(name));
    legend.append(item);
  });
}

// ------------------------------------------------------------------ live requests

// One request in flight at a time; while it runs only the newest wish waits, so
// a fast drag never queues stale points and every answer is fresh.
const live = { busy: false, next: null };

function request(path, body, started, then) {
  live.next = { path, body, started, then };
  if (!live.busy) pump();
}

async function pump() {
  live.busy = true;
  while (live.next) {
    const job = live.next;
    live.next = null;
    try {
      job.then(await api(job.path, job.body), job.started);
    } catch (error) {
      status(error.message);
    }
  }
  live.busy = false;
}

// The current latent: shown large, marked on the map, and set on the sliders.
function show(answer, started) {
  state.z = answer.z;
  state.xy = answer.xy;
  drawPixels($("view"), answer.image);
  drawMap();
  for (const input of document.querySelectorAll("#sliders input")) {
    const dim = Number(input.dataset.dim);
    input.value = answer.z[dim];
    input.nextElementSibling.textContent = answer.z[dim].toFixed(2);
  }
  $("where").textContent = `map (${answer.xy[0].toFixed(2)}, ${answer.xy[1].toFixed(2)})`;
  if (started !== undefined) {
    const ms = performance.now() - started;
    window.vaegen.latencies.push(ms);
    const sorted = [...window.vaegen.latencies].sort((a, b) => a - b);
    $("latency").textContent = `median latency ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms`;
  }
  window.vaegen.decodes += 1;
}

function decodePoint(event) {
  const rect = $("map").getBoundingClientRect();
  const scale = $("map").width / rect.width;
  const xy = fromCanvas((event.clientX - rect.left) * scale, (event.clientY - rect.top) * scale);
  request("/api/decode", { xy }, event.timeStamp, show);
}

function setupMap() {
  const map = $("map");
  map.addEventListener("pointerdown", (event) => {
    map.setPointerCapture(event.pointerId);
    decodePoint(event);
  });
  map.addEventListener("pointermove", (event) => {
    if (event.buttons & 1) decodePoint(event);
  });
}

function setupSliders() {
  const box = $("sliders");
  for (const dim of state.info.sliders) {
    const row = document.createElement("label"), input = document.createElement("input"),
      value = document.createElement("output");
    Object.assign(input, { type: "range", min: -4, max: 4, step: 0.01, value: 0 });
    input.dataset.dim = dim;
    row.append(`z${dim}`, input, value);
    input.addEventListener("input", (event) => {
      const z = state.z.slice();
      z[dim] = Number(input.value);
      request("/api/decode", { z }, event.timeStamp, show);
    });
    box.append(row);
  }
}

function setupClasses() {
  $("prior").addEventListener("click", () => request("/api/sample", { seed: state.seed++ }, undefined, show));
  if (!state.info.classes.length) return;
  $("class-picker").hidden = false;
  for (const name of state.info.classes) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.addEventListener("click", () => request("/api/sample", { class: name, seed: state.seed++ }, undefined, show));
    $("classes").append(button);
  }
}

// ------------------------------------------------------------------ the drawing pad

function padPixels() {
  // The drawing at 4x the model's width, light ink on black, as numbers in 0..1.
  const side = Math.min(state.info.max_pad_side, state.info.image_shape[2] * 4);
  const small = document.createElement("canvas");
  small.width = small.height = side;
  const ctx = small.getContext("2d");
  ctx.drawImage($("pad"), 0, 0, side, side);
  const rgba = ctx.getImageData(0, 0, side, side).data, pixels = new Array(side * side);
  let ink = 0;
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = Math.round(rgba[4 * i] / 2.55) / 100;
    ink = Math.max(ink, pixels[i]);
  }
  return ink > 0.2 ? { width: side, height: side, pixels } : null;
}

function showDrawing(answer, started) {
  state.drawn = answer.xy;
  drawPixels($("input"), answer.input);
  drawPixels($("recon"), answer.image);
  if (answer.score) showScore(answer.score);
  window.vaegen.encodes += 1;
  show(answer, started);
}

// The drawing's likelihood beside its reconstruction: bits/dim, its percentile among the
// held-out images, and the flag (Model.score's record).
function showScore(score) {
  const box = $("score"), bits = document.createElement("strong");
  bits.textContent = `${score.bits_per_dim.toFixed(3)} bits/dim`;
  box.replaceChildren(bits, ` (k=${score.k})`, document.createElement("br"));
  if (!score.calibrated || score.percentile === null) {
    box.append("no calibration in this bundle: `vaegen fit-prior` adds one");
  } else {
    box.append(`${score.score}: percentile ${score.percentile.toFixed(1)} of the held-out images`,
      document.createElement("br"));
    const verdict = document.createElement("span");
    verdict.className = score.flagged ? "flag" : "";
    verdict.textContent = score.flagged ? "flagged: unlike the training data" : "like the training data";
    box.append(verdict);
  }
  window.vaegen.scores += 1;
}

function setupPad() {
  const pad = $("pad"), ctx = pad.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  let last = null;
  const point = (event) => {
    const rect = pad.getBoundingClientRect();
    return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
  };
  const stroke = (event) => {
    const here = point(event);
    Object.assign(ctx, { strokeStyle: "#fff", lineWidth: pad.width / 14, lineCap: "round", lineJoin: "round" });
    ctx.beginPath();
    ctx.moveTo(...(last || here));
    ctx.lineTo(...here);
    ctx.stroke();
    last = here;
    const body = padPixels();
    if (body) request("/api/encode", { ...body, score: false }, event.timeStamp, showDrawing);
  };
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    last = null;
    stroke(event);
  });
  pad.addEventListener("pointermove", (event) => { if (event.buttons & 1) stroke(event); });
  pad.addEventListener("pointerup", (event) => {
    last = null;
    const body = padPixels();  // the finished stroke is scored once: k decodes are too many for every move
    if (body) request("/api/encode", body, event.timeStamp, showDrawing);
  });
  $("clear").addEventListener("click", () => {
    clear();
    $("score").replaceChildren();
    state.drawn = null;
    drawMap();
  });
}

// ------------------------------------------------------------------ a picture from disk

// A file's bytes as base64, in chunks (String.fromCharCode takes a bounded argument list).
function base64Of(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// A file over the server's limit is drawn to at most 512 px a side first (as a PNG: transparency kept);
// the server prepares it as `vaegen reconstruct` prepares a file.
async function fileBytes(file) {
  if (file.size <= state.info.max_file_bytes) return file.arrayBuffer();
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 512 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  return blob.arrayBuffer();
}

async function encodeFile(file, started) {
  if (!file) return;
  $("file-name").textContent = file.name;
  try {
    const body = { file: base64Of(await fileBytes(file)), name: file.name };
    request("/api/encode", body, started, showDrawing);
  } catch (error) {
    status(`${file.name}: ${error.message}`);
  }
}

function setupFile() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => encodeFile(event.target.files[0], event.timeStamp));
  for (const target of [drop, $("pad")]) {
    target.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    target.addEventListener("dragleave", () => drop.classList.remove("over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      encodeFile(event.dataTransfer.files[0], event.timeStamp);
    });
  }
  if (!state.info.drawing) {  // a colour model takes pictures, not drawings
    $("pad").style.display = "none";  // (the stylesheet's display would win over `hidden`)
    $("clear").style.display = "none";
    $("pad-title").textContent = "Encode a picture";
    $("pad-hint").textContent = "Drop or choose an image: the model reads it (resized, transparency on its " +
      "background) and shows what it keeps.";
  }
}

// ------------------------------------------------------------------ interpolation

function setEnd(end) {
  if (!state.z) return;
  state.ends[end] = { z: state.z, xy: state.xy };
  $(`end-${end}`).getContext("2d").drawImage($("view"), 0, 0, 56, 56);
  drawMap();
  if (state.ends.a && state.ends.b) interpolate();
}

async function interpolate() {
  const steps = 10;
  try {
    const answer = await api("/api/interpolate", { a: state.ends.a.z, b: state.ends.b.z, steps });
    const strip = $("strip"), w = strip.width / steps;
    answer.frames.forEach((frame, i) => drawPixels(strip, frame, i * w, w));
    state.frames = answer.frames.concat(answer.frames.slice(1, -1).reverse());  // there and back
    state.path = answer.xy;
    drawMap();
  } catch (error) {
    status(error.message);
  }
}

function animate() {
  let i = 0;
  setInterval(() => {
    if (!state.frames.length) return;
    drawPixels($("anim"), state.frames[i++ % state.frames.length]);
  }, 90);
}

// ------------------------------------------------------------------ start

async function start() {
  state.info = await api("/api/info");
  const info = state.info;
  $("about").textContent = `${info.model} · ${info.latent_dim}-d latent · map: ${info.points.x.length} ` +
    `${info.dataset} images, ${info.projection} · ${info.provider}`;
  if (info.map_note) {
    $("map-note").textContent = info.map_note;  // why the map has no dots; picking a point still decodes
    $("map-note").hidden = false;
  }
  $("prep").textContent = info.preprocessing === "mnist" ? "cropped and centred the MNIST way" : "resized";
  drawDots();
  buildLegend();
  setupMap();
  setupSliders();
  setupClasses();
  setupPad();
  setupFile();
  $("set-a").addEventListener("click", () => setEnd("a"));
  $("set-b").addEventListener("click", () => setEnd("b"));
  animate();
  show(await api("/api/decode", { xy: [0, 0] }));
  window.vaegen.ready = true;
  status("ready");
}

start().catch((error) => status(`could not start: ${error.message}`));
