// facewright web UI: plain JavaScript, no libraries. Each page's part runs when <body data-page> names it.
"use strict";

const TOKEN = document.querySelector('meta[name="facewright-token"]')?.content || "";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// --- talking to the server ---------------------------------------------------------------------------------

class ServerError extends Error {
  constructor(body, status) {
    super(body.message || `HTTP ${status}`);
    this.body = body;
    this.status = status;
  }
}

async function call(method, url, body) {
  const options = { method, headers: { "X-Facewright-Token": TOKEN, Accept: "application/json" } };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, options);
  const text = await response.text();
  let data;
  try { data = text ? JSON.parse(text) : {}; } catch { data = { message: text }; }
  if (response.status === 413 && !data.type) {
    data = { type: "UploadRefused", message: "the file is larger than the server's upload limit",
             fix: "pick it from a folder the server allows (serve --allow DIR)" };
  }
  if (!response.ok) throw new ServerError(data, response.status);
  return data;
}

async function upload(file, kind) {
  const form = new FormData();
  form.append("file", file);
  return call("POST", `/api/uploads?kind=${encodeURIComponent(kind)}`, form);
}

function showError(error) {
  const toast = $("#toast");
  const body = error.body || { message: String(error.message || error) };
  toast.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = body.type ? `${body.type}: ` : "Error: ";
  toast.append(title, document.createTextNode(body.message || ""));
  if (body.path) toast.append(element("div", "muted", `file: ${body.path}`));
  if (body.fix) toast.append(element("div", "", `fix: ${body.fix}`));
  if (body.consent || body.type === "ConsentError") {
    const link = element("a", "", "Go to Consent");
    link.href = "/consent";
    toast.append(link);
  }
  const close = element("button", "secondary", "Dismiss");
  close.type = "button";
  close.addEventListener("click", () => { toast.hidden = true; });
  toast.append(" ", close);
  toast.hidden = false;
  toast.scrollIntoView({ block: "nearest" });
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function guarded(handler) {
  return async (event) => {
    try { await handler(event); } catch (error) { showError(error); }
  };
}

// --- jobs: one event stream per page, shared by every part that waits on a job --------------------------------

const jobs = { list: [], listeners: new Set(), waiting: new Map() };

function startEvents() {
  const source = new EventSource("/api/events");
  source.onerror = async () => {
    // the server went away or restarted with another token: say so, and send the page to the login if needed
    try {
      await call("GET", "/api/jobs");
    } catch (error) {
      if (error.status === 401) window.location.assign("/login");
      else showError({ body: { type: "ServerUnreachable", message: "the server does not answer",
                               fix: "check that facewright serve still runs, then reload the page" } });
    }
  };
  source.onmessage = (message) => {
    const snapshot = JSON.parse(message.data);
    jobs.list = snapshot.jobs;
    renderMiniJobs();
    for (const listener of jobs.listeners) listener(jobs.list);
    for (const [id, resolve] of jobs.waiting) {
      const job = jobs.list.find((j) => j.id === id);
      if (job && !["queued", "running"].includes(job.status)) {
        jobs.waiting.delete(id);
        resolve(job);
      }
    }
  };
}

function whenEnded(id) {
  const known = jobs.list.find((j) => j.id === id);
  if (known && !["queued", "running"].includes(known.status)) return Promise.resolve(known);
  return new Promise((resolve) => jobs.waiting.set(id, resolve));
}

function barText(bar) {
  const total = bar.total ? `/${Math.round(bar.total)}` : "";
  const rate = bar.rate ? `, ${bar.rate.toFixed(1)} ${bar.unit}/s` : "";
  const extra = Object.entries(bar.postfix || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  return `${bar.desc}: ${Math.round(bar.n)}${total} ${bar.unit}${rate}${extra ? "; " + extra : ""}`;
}

function renderBars(container, job) {
  container.replaceChildren();
  const bars = Object.values(job?.live?.bars || {});
  for (const bar of bars) {
    const row = element("div", "bar");
    const meter = document.createElement("progress");
    if (bar.total) { meter.max = bar.total; meter.value = bar.n; }
    meter.setAttribute("aria-label", bar.desc);
    row.append(meter, element("span", "", barText(bar)));
    container.append(row);
  }
  if (job && !bars.length) container.append(element("p", "muted", job.status === "queued" ? "waiting in the queue" : "starting"));
}

function renderMiniJobs() {
  const box = $("#jobs-mini");
  if (!box) return;
  const active = jobs.list.filter((j) => ["queued", "running"].includes(j.status));
  box.replaceChildren();
  if (!active.length) { box.textContent = "none running"; return; }
  for (const job of active) {
    const bars = Object.values(job.live?.bars || {});
    const last = bars[bars.length - 1];
    box.append(element("div", "", `#${job.id} ${job.kind}: ${job.status}${last ? " · " + barText(last) : ""}`));
  }
}

// Submit a job and follow it in `live` (a section with .bars and .result); resolves with the ended job.
async function runJob(kind, params, live, buttons = []) {
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await followJob(await call("POST", "/api/jobs", { kind, params }), live);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function followJob(job, live) {
  live.hidden = false;
  live.dataset.job = job.id;
  $(".result", live).textContent = "";
  const follow = (list) => {
    const current = list.find((j) => j.id === job.id);
    if (current) renderBars($(".bars", live), current);
  };
  jobs.listeners.add(follow);
  const ended = await whenEnded(job.id);
  jobs.listeners.delete(follow);
  follow([ended]);
  if (ended.status !== "done") {
    $(".result", live).textContent = `${ended.kind} ${ended.status}`;
    if (ended.error && ended.status === "failed") showError({ body: ended.error });
  }
  return ended;
}

function optionsOf(form) {
  const options = {};
  for (const input of $$("[data-option]", form)) {
    const kind = input.dataset.kind;
    let value = kind === "bool" ? input.checked : input.value;
    const unchanged = kind === "bool" ? String(value) === input.dataset.default : value === input.dataset.default;
    if (unchanged || value === "") continue;
    if (kind === "int") value = parseInt(value, 10);
    else if (kind === "float") value = parseFloat(value);
    options[input.dataset.option] = value;
  }
  return options;
}

// File pickers: an upload adds itself to the list, checked.
function setUpPickers() {
  for (const picker of $$("[data-picker]")) {
    const input = $("input[type=file]", picker);
    const list = $(".file-list", picker);
    const multiple = input.multiple;
    input.addEventListener("change", guarded(async () => {
      for (const file of input.files) {
        const stored = await upload(file, input.dataset.uploadKind);
        $(".empty", list)?.remove();
        const label = element("label", "file");
        const choice = document.createElement("input");
        choice.type = multiple ? "checkbox" : "radio";
        choice.name = picker.dataset.picker;
        choice.value = stored.ref;
        choice.checked = true;
        label.append(choice, ` upload: ${stored.name}`);
        list.prepend(label);
      }
      input.value = "";
    }));
  }
}

function picked(form, name) {
  return $$(`[data-picker="${name}"] input[name="${name}"]:checked`, form).map((i) => i.value);
}

// --- pages -----------------------------------------------------------------------------------------------------

const pages = {};

pages.consent = () => {
  const form = $("#consent-form");
  let photo = null;
  let release = null;
  $("#c-photo").addEventListener("change", guarded(async (event) => {
    photo = null;
    const file = event.target.files[0];
    if (!file) return;
    const stored = await upload(file, "image");
    const figure = $("#c-photo-preview");
    const frame = $(".frame", figure);
    $$(".face-box", frame).forEach((b) => b.remove());
    $("img", figure).src = stored.url;
    for (const [x0, y0, x1, y1] of stored.faces) {
      const box = element("div", "face-box");
      box.style.left = `${(100 * x0) / stored.width}%`;
      box.style.top = `${(100 * y0) / stored.height}%`;
      box.style.width = `${(100 * (x1 - x0)) / stored.width}%`;
      box.style.height = `${(100 * (y1 - y0)) / stored.height}%`;
      frame.append(box);
    }
    const n = stored.faces.length;
    $("figcaption", figure).textContent = n === 1 ? "One face found: this is the face the consent is bound to."
      : n === 0 ? "No face found: choose a clear, front-facing photo." : `${n} faces found: the photo must show only this person.`;
    figure.hidden = false;
    if (n === 1) photo = stored.ref;
  }));
  $("#c-release").addEventListener("change", guarded(async (event) => {
    release = event.target.files[0] ? (await upload(event.target.files[0], "release")).ref : null;
  }));
  form.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    if (!photo) throw new Error("choose a photo with exactly one face first");
    const data = Object.fromEntries(new FormData(form));
    const record = await call("POST", "/api/consents", { ...data, photo, release });
    window.location.assign(`/consent?added=${record.id}`);
  }));
  for (const button of $$("[data-revoke]")) {
    button.addEventListener("click", guarded(async () => {
      const reason = window.prompt("Why is this consent revoked? (recorded and signed)");
      if (!reason) return;
      await call("POST", `/api/consents/${button.dataset.revoke}/revoke`, { reason });
      window.location.reload();
    }));
  }
};

pages.extract = () => {
  const form = $("#extract-form");
  form.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const params = { identity: $("#e-identity").value, inputs: picked(form, "inputs"), options: optionsOf(form) };
    const job = await runJob("extract", params, $("#extract-live"), $$("button[type=submit]", form));
    if (job.status === "done") {
      const counts = Object.entries(job.result.counts).map(([k, v]) => `${k} ${v}`).join(", ");
      const result = $("#extract-live .result");
      result.textContent = `Faceset ${job.result.faceset}: ${counts}. `;
      const link = element("a", "", "Review it");
      link.href = `/faceset/${job.result.faceset}`;
      result.append(link);
    }
  }));
};

pages.faceset = () => {
  const grid = $("#face-grid");
  if (!grid) return;
  const name = $("#faceset-name").textContent;
  const filter = $("#face-filter");
  const state = { offset: 0, limit: 60, total: 0, faces: [], selected: new Set(), anchor: null, focus: 0, note: "" };

  async function load() {
    const query = new URLSearchParams({ offset: state.offset, limit: state.limit });
    for (const [key, value] of new FormData(filter)) if (value !== "") query.set(key, value);
    const page = await call("GET", `/api/facesets/${encodeURIComponent(name)}/faces?${query}`);
    state.total = page.total;
    state.faces = page.faces;
    state.focus = Math.min(state.focus, Math.max(0, page.faces.length - 1));
    draw();
  }

  function draw() {
    grid.replaceChildren();
    state.faces.forEach((face, index) => {
      const tile = element("div", "face");
      tile.setAttribute("role", "option");
      tile.dataset.id = face.id;
      tile.dataset.index = index;
      tile.setAttribute("aria-selected", state.selected.has(face.id) ? "true" : "false");
      if (index === state.focus) tile.classList.add("focus");
      if (face.url) {
        const img = document.createElement("img");
        img.src = face.url;
        img.alt = `face ${face.id}`;
        img.loading = "lazy";
        tile.append(img);
      } else tile.append(element("div", "no-crop", "no crop"));
      const sharp = face.sharpness == null ? "" : ` · sharp ${face.sharpness.toFixed(0)}`;
      tile.append(element("small", "", `${face.status === "kept" ? "" : face.reason + " · "}yaw ${face.yaw.toFixed(0)} pitch ${face.pitch.toFixed(0)}${sharp}`));
      tile.title = `${face.source}, frame ${face.frame_index}`;
      grid.append(tile);
    });
    const last = Math.min(state.offset + state.faces.length, state.total);
    $("#page-info").textContent = state.total ? `${state.offset + 1}-${last} of ${state.total}` : "no faces";
    $("#prev-page").disabled = state.offset === 0;
    $("#next-page").disabled = last >= state.total;
    $("#selection-count").textContent = state.note || `${state.selected.size} selected`;
    $("#delete-faces").disabled = state.selected.size === 0;
  }

  function toggle(index, range) {
    const face = state.faces[index];
    if (!face) return;
    state.note = "";
    if (range && state.anchor !== null) {
      const [a, b] = [Math.min(state.anchor, index), Math.max(state.anchor, index)];
      for (let i = a; i <= b; i += 1) state.selected.add(state.faces[i].id);
    } else {
      if (state.selected.has(face.id)) state.selected.delete(face.id);
      else state.selected.add(face.id);
      state.anchor = index;
    }
    state.focus = index;
    draw();
  }

  async function removeSelected() {
    const ids = Array.from(state.selected);
    if (!ids.length) return;
    const done = await call("POST", `/api/facesets/${encodeURIComponent(name)}/remove`, { ids });
    state.selected.clear();
    const kept = $("#kept-count");
    kept.textContent = String(Math.max(0, parseInt(kept.textContent, 10) - done.removed));
    state.note = `${done.removed} removed`;
    await load();
  }

  grid.addEventListener("click", (event) => {
    const tile = event.target.closest(".face");
    if (tile) { grid.focus(); toggle(Number(tile.dataset.index), event.shiftKey); }
  });
  grid.addEventListener("keydown", guarded(async (event) => {
    const columns = Math.max(1, Math.round(grid.clientWidth / (grid.firstElementChild?.offsetWidth || 120)));
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (event.key in moves) {
      event.preventDefault();
      const next = Math.max(0, Math.min(state.faces.length - 1, state.focus + moves[event.key]));
      if (event.shiftKey) toggle(next, true); else { state.focus = next; draw(); }
    } else if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      toggle(state.focus, event.shiftKey);
    } else if (event.key === "Delete") {
      event.preventDefault();
      await removeSelected();
    } else if (event.key === "a" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      state.faces.forEach((f) => state.selected.add(f.id));
      draw();
    } else if (event.key === "Escape") {
      state.selected.clear();
      draw();
    }
  }));
  $("#delete-faces").addEventListener("click", guarded(removeSelected));
  $("#select-none").addEventListener("click", () => { state.selected.clear(); draw(); });
  $("#prev-page").addEventListener("click", guarded(async () => { state.offset = Math.max(0, state.offset - state.limit); await load(); }));
  $("#next-page").addEventListener("click", guarded(async () => { state.offset += state.limit; await load(); }));
  filter.addEventListener("change", guarded(async () => { state.offset = 0; await load(); }));
  filter.addEventListener("submit", (event) => event.preventDefault());
  for (const cell of $$("#pose-grid [data-cell]")) {
    cell.addEventListener("click", guarded(async () => {
      $$("#pose-grid .chosen").forEach((c) => c.classList.remove("chosen"));
      cell.classList.add("chosen");
      $("#f-cell").value = cell.dataset.cell;
      state.offset = 0;
      await load();
    }));
  }
  $("#clear-cell").addEventListener("click", guarded(async () => {
    $$("#pose-grid .chosen").forEach((c) => c.classList.remove("chosen"));
    $("#f-cell").value = "";
    state.offset = 0;
    await load();
  }));
  load().catch(showError);
};

function drawLoss(canvas, metrics) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  const points = metrics.filter((m) => typeof m.loss === "number");
  if (points.length < 2) {
    context.fillStyle = "#666";
    context.fillText("the loss curve appears after a few logged steps", 16, height / 2);
    return;
  }
  const steps = points.map((m) => m.step);
  const losses = points.map((m) => m.loss);
  const [s0, s1] = [Math.min(...steps), Math.max(...steps)];
  const [l0, l1] = [Math.min(...losses), Math.max(...losses)];
  const pad = 36;
  const x = (s) => pad + ((s - s0) / Math.max(1, s1 - s0)) * (width - 2 * pad);
  const y = (l) => height - pad - ((l - l0) / Math.max(1e-9, l1 - l0)) * (height - 2 * pad);
  context.strokeStyle = "#ccc";
  context.strokeRect(pad, pad, width - 2 * pad, height - 2 * pad);
  context.strokeStyle = "#1f5fbf";
  context.lineWidth = 2;
  context.beginPath();
  points.forEach((m, i) => (i ? context.lineTo(x(m.step), y(m.loss)) : context.moveTo(x(m.step), y(m.loss))));
  context.stroke();
  context.fillStyle = "#333";
  context.fillText(`loss ${l1.toFixed(4)}`, 4, pad - 8);
  context.fillText(l0.toFixed(4), 4, height - pad + 14);
  context.fillText(`step ${s0}`, pad, height - 8);
  context.fillText(`${s1}`, width - pad - 20, height - 8);
}

pages.train = () => {
  const form = $("#train-form");
  const live = $("#train-live");
  let watched = null;
  let timer = null;

  async function refresh() {
    if (!watched) return;
    const data = await call("GET", `/api/models/${encodeURIComponent(watched)}/metrics`);
    drawLoss($("#loss-chart"), data.metrics);
    if (data.preview) {
      const img = $("#train-preview");
      img.src = `${data.preview}?step=${data.step}&t=${Date.now()}`;
      img.hidden = false;
    }
  }

  function watch(model) {
    watched = model;
    $("#train-model").textContent = model;
    live.hidden = false;
    clearInterval(timer);
    timer = setInterval(() => refresh().catch(() => {}), 2000);
    refresh().catch(() => {});
  }

  // A training job, started here, resumed, or found running (another tab, a reload): its bars, the model's
  // curve and preview, Stop while it runs, then its outcome and Resume when it can be.
  async function followTraining(job) {
    const stop = $("#train-stop");
    const resume = $("#train-resume");
    resume.hidden = true;
    stop.hidden = false;
    stop.disabled = false;
    stop.onclick = guarded(async () => { stop.disabled = true; await call("POST", `/api/jobs/${job.id}/cancel`); });
    if (job.params?.name) watch(job.params.name);
    const ended = await followJob(job, live);
    stop.hidden = true;
    if (ended.result?.model) watch(ended.result.model);
    await refresh().catch(() => {});
    if (ended.status === "done") {
      $(".result", live).textContent = `Trained to step ${ended.result.step} (${ended.result.samples_per_second} samples/s, stopped by ${ended.result.stopped}).`;
    }
    if (ended.resumable) {
      resume.hidden = false;
      resume.onclick = guarded(async () => {
        resume.hidden = true;
        await followTraining(await call("POST", `/api/jobs/${ended.id}/resume`));
      });
    }
  }

  form.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const options = optionsOf(form);
    const steps = parseInt(data.get("steps") || "0", 10);
    if (steps > 0) options.steps = steps;
    const params = { src: data.get("src"), dst: data.get("dst"), name: data.get("name") || null,
                     preset: data.get("preset") || null, resume: data.get("resume") === "on", options };
    await followTraining(await call("POST", "/api/jobs", { kind: "train", params }));
  }));
  for (const button of $$("[data-watch-model]")) button.addEventListener("click", () => watch(button.dataset.watchModel));
  $("#mask-form").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    const options = { model: data.get("model"), steps: parseInt(data.get("steps"), 10) };
    const job = await runJob("mask train", { faceset: data.get("faceset"), options }, $("#mask-live"),
                             $$("button", event.target));
    if (job.status === "done") {
      const iou = job.result.iou == null ? "" : `, held-out face IoU ${job.result.iou.toFixed(3)}`;
      $("#mask-live .result").textContent = `Mask model ${job.result.model}: ${job.result.steps} steps${iou}.`;
    }
  }));
  const chosen = new URLSearchParams(window.location.search).get("model");
  if (chosen) watch(chosen);
  // a training started in another tab, or before a reload, is followed here too
  jobs.listeners.add(function adopt(list) {
    jobs.listeners.delete(adopt);
    const running = list.find((j) => j.kind === "train" && ["queued", "running"].includes(j.status));
    if (running && !live.dataset.job) followTraining(running).catch(showError);
  });
};

pages.swap = () => {
  const form = $("#swap-form");
  const live = $("#swap-live");
  const chosen = new URLSearchParams(window.location.search).get("model");
  if (chosen) $("#s-model").value = chosen;

  function params() {
    const [input] = picked(form, "input");
    if (!input) throw new Error("choose the video or photo to swap into");
    return { model: $("#s-model").value, input, options: optionsOf(form) };
  }

  $("#swap-preview").addEventListener("click", guarded(async () => {
    const job = await runJob("preview", { ...params(), frames: parseInt($("#s-frames").value || "3", 10) }, live,
                             [$("#swap-preview"), $("#swap-render")]);
    if (job.status !== "done") return;
    const box = $("#preview-frames");
    box.replaceChildren();
    for (const frame of job.result.frames) box.append(compare(frame));
    $("#preview-result").hidden = false;
  }));

  $("#swap-render").addEventListener("click", guarded(async () => {
    const output = $("#s-output").value || null;
    const job = await runJob("swap", { ...params(), output }, live, [$("#swap-preview"), $("#swap-render")]);
    if (job.status !== "done") return;
    if (!job.result.output_ref) {
      $(".result", live).textContent = `Written to ${job.result.output} (outside the workspace: not shown here).`;
      return;
    }
    const url = fileUrl(job.result.output_ref);
    const section = $("#render-result");
    const isVideo = !/\.(png|jpe?g|webp)$/i.test(job.result.output_ref);
    $("#result-video").hidden = !isVideo;
    $("#result-image").hidden = isVideo;
    if (isVideo) $("#result-video").src = url; else $("#result-image").src = url;
    $("#result-download").href = `${url}?download=true`;
    $("#result-verify").href = `/verify?ref=${encodeURIComponent(refOf(job.result.output_ref))}`;
    $(".result", live).textContent = `${job.result.frames} frames, faces swapped in ${job.result.frames_swapped}, ${job.result.fps} frames/s; watermark id ${job.result.payload}.`;
    section.hidden = false;
    const badge = $("#provenance-badge");
    badge.textContent = "checking provenance";
    badge.className = "badge";
    const report = await call("POST", "/api/verify", { ref: refOf(job.result.output_ref) });
    badge.textContent = report.outcome;
    badge.className = `badge ${report.outcome === "verified" ? "ok" : "bad"}`;
  }));
};

// Files of the workspace, as the server names them (relative POSIX paths): their address and reference.
function fileUrl(ref) {
  return `/files/ws/${ref.split("/").map(encodeURIComponent).join("/")}`;
}

function refOf(ref) {
  return `ws:${ref}`;
}

// A before/after slider: the swapped frame over the original, clipped at the slider's position.
function compare(frame) {
  const figure = element("figure", "compare");
  const stage = element("div", "compare-stage");
  const before = document.createElement("img");
  before.src = fileUrl(frame.before);
  before.alt = `frame ${frame.index} as it is`;
  const after = document.createElement("img");
  after.src = fileUrl(frame.after);
  after.alt = `frame ${frame.index} swapped`;
  after.className = "after";
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = "50";
  slider.setAttribute("aria-label", `before/after position, frame ${frame.index}`);
  const clip = () => { after.style.clipPath = `inset(0 0 0 ${slider.value}%)`; };
  slider.addEventListener("input", clip);
  clip();
  stage.append(before, after);
  figure.append(stage, slider, element("figcaption", "", `frame ${frame.index}: before | after`));
  return figure;
}

pages.verify = () => {
  const zone = $("#drop-zone");
  const input = $("#verify-file");

  async function check(file) {
    const stored = await upload(file, "media");
    await report(stored.ref);
  }

  async function report(ref) {
    const result = await call("POST", "/api/verify", { ref });
    const section = $("#verify-report");
    const outcome = $("#verify-outcome");
    outcome.textContent = result.outcome;
    outcome.className = `badge ${result.outcome === "verified" ? "ok" : "bad"}`;
    const body = $("tbody", section);
    body.replaceChildren();
    for (const [key, value] of Object.entries(result)) {
      const row = element("tr");
      row.append(element("th", "", key), element("td", "", typeof value === "object" ? summarize(value) : String(value)));
      body.append(row);
    }
    $("#verify-json").textContent = JSON.stringify(result, null, 2);
    section.hidden = false;
  }

  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", guarded(async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) await check(event.dataTransfer.files[0]);
  }));
  input.addEventListener("change", guarded(async () => { if (input.files[0]) await check(input.files[0]); }));
  const ref = new URLSearchParams(window.location.search).get("ref");
  if (ref) report(ref).catch(showError);
};

function summarize(value) {
  if (value === null) return "none";
  return Object.entries(value).filter(([, v]) => typeof v !== "object" || v === null)
    .map(([k, v]) => `${k}: ${v}`).join("; ") || JSON.stringify(value);
}

pages.score = () => {
  const form = $("#score-form");
  form.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const [target] = picked(form, "target_video");
    const job = await runJob("score", { output_id: parseInt(data.get("output_id"), 10), source: data.get("source"),
                                        target_video: target || null, options: optionsOf(form) }, $("#score-live"),
                             $$("button[type=submit]", form));
    if (job.status !== "done") return;
    const list = $("#score-headline");
    list.replaceChildren(...job.result.headline.map((line) => element("li", "", line)));
    const plots = $("#score-plots");
    plots.replaceChildren();
    for (const ref of job.result.plots || []) {
      const img = document.createElement("img");
      img.src = fileUrl(ref);
      img.alt = ref.split("/").pop();
      plots.append(img);
    }
    $("#score-result").hidden = false;
  }));
};

pages.jobs = () => {
  const body = $("#jobs-table tbody");
  const rows = new Map();
  jobs.listeners.add((list) => {
    for (const job of list) {
      let row = rows.get(job.id);
      if (!row) {
        row = element("tr");
        row.parts = [0, 1, 2, 3, 4].map(() => element("td"));  // not .cells: a table row's own, read-only
        row.actions = element("td");
        row.append(...row.parts, row.actions);
        rows.set(job.id, row);
      }
      const bars = Object.values(job.live?.bars || {});
      const outcome = job.error ? job.error.message : job.result ? summarize(job.result) : "";
      const texts = [String(job.id), job.kind, job.status, bars.length ? barText(bars[bars.length - 1]) : "", outcome];
      texts.forEach((text, i) => { if (row.parts[i].textContent !== text) row.parts[i].textContent = text; });
      // the buttons are replaced only when what they can do changes: a click is never lost to a redraw
      const wanted = `${["queued", "running"].includes(job.status) ? "cancel" : ""}${job.resumable ? "resume" : ""}`;
      if (row.actions.dataset.wanted !== wanted) {
        row.actions.dataset.wanted = wanted;
        row.actions.replaceChildren();
        if (wanted.includes("cancel")) row.actions.append(button("Cancel", `/api/jobs/${job.id}/cancel`));
        if (wanted.includes("resume")) row.actions.append(button("Resume", `/api/jobs/${job.id}/resume`));
      }
    }
    const order = list.map((job) => rows.get(job.id));
    if (order.length !== body.children.length || order.some((row, i) => body.children[i] !== row)) {
      body.replaceChildren(...order);
    }
  });
};

function button(label, url) {
  const node = element("button", "secondary", label);
  node.type = "button";
  node.addEventListener("click", guarded(async () => { node.disabled = true; await call("POST", url); }));
  return node;
}

// --- start ---------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const menu = $(".menu");
  menu?.addEventListener("click", () => {
    const open = menu.getAttribute("aria-expanded") !== "true";
    menu.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("menu-open", open);
  });
  setUpPickers();
  const page = pages[document.body.dataset.page];
  if (page) page();
  if (TOKEN) startEvents();
});
