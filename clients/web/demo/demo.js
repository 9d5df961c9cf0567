// The demo page: pick or drop a photo -> shrink it -> upload it to a signed URL -> follow the job ->
// show the cut-out, the crops and the per-stage times. Everything goes through ../closet-upload.js,
// exactly as the app's frontend would use it. Configuration: /config.json (served by `make dev`),
// overridable with query parameters (?uploadUrlEndpoint=&statusEndpoint=&authToken=&userId=).
import { followJob, resizeForUpload, uploadPhoto } from "../closet-upload.js";

const $ = (selector) => document.querySelector(selector);
const STEP_ORDER = ["QUEUED", "REMOVING_BACKGROUND", "BACKGROUND_REMOVED", "ANALYZING", "ANALYZED", "EXPANDING",
  "EXPANDED", "COMPLETED"];
const STAGE_NAMES = { ingest: "Reading the photo", remove_background: "Removing the background", segment: "Finding garments",
  expand: "Generating product shots", deliver: "Saving the results" };

/** What happened, for people (on the page) and for tests (window.closetDemo). */
const demo = { state: "idle", phases: [], resize: null, upload: null, statuses: [], result: null, error: null,
  sentence: null, times: {} };
window.closetDemo = demo;

const config = await loadConfig();
let running = false;

function setPhase(state, text) {
  demo.state = state;
  demo.phases.push(state);
  const phase = $("#phase");
  phase.dataset.state = state;
  phase.textContent = text;
}

function setStage(id, status, value = null, detail = null) {
  const stage = $(`#stage-${id}`);
  stage.dataset.status = status;
  const valueNode = stage.querySelector(".value");
  const detailNode = stage.querySelector(".detail");
  if (value !== null && valueNode) valueNode.textContent = value;
  if (detail !== null && detailNode) detailNode.textContent = detail;
}

async function loadConfig() {
  let loaded = {};
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (response.ok) loaded = await response.json();
  } catch { /* no dev server: query parameters only */ }
  const params = new URLSearchParams(location.search);
  for (const key of ["uploadUrlEndpoint", "statusEndpoint", "authToken", "userId"]) {
    if (params.get(key)) loaded[key] = params.get(key);
  }
  return { userId: "demo", ...loaded };
}

/**
 * What a person reads when the upload or the follow-up fails: the server's own sentence when it sent
 * one (upload_url and status send one with every refusal), else one for what happened on the way.
 * The developer's message stays in window.closetDemo.error.
 */
function sentenceFor(error, stage) {
  if (error && error.userMessage) return error.userMessage;
  const status = error && error.status;
  if (error && error.name === "TimeoutError") return "The photo is taking longer than expected. Please try again in a minute.";
  if (status === 0) return "The upload service could not be reached. Check your connection and try again.";
  if (status === 413) return "This photo is too large to upload. Please choose a smaller one.";
  if (status === 400 && stage === "upload") return "The photo could not be stored (it may be too large). Please choose another one.";
  if (status === 403) return "The upload link was refused or has expired. Please try again.";
  if (status === 429 || status >= 500) return "The service is busy right now. Please try again in a moment.";
  return stage === "pipeline" ? "We could not follow your photo's processing. Please try again."
    : "Something went wrong while uploading. Please try again.";
}

function formatBytes(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} KB`;
  return `${bytes} B`;
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function newClothId() {
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

function showSteps(status) {
  const reached = STEP_ORDER.indexOf(status.currentStep);
  const finished = status.state === "completed";
  for (const item of document.querySelectorAll("#steps li")) {
    const index = STEP_ORDER.indexOf(item.dataset.step);
    item.dataset.status = finished || index < reached ? "done" : index === reached ? "active" : "pending";
  }
  // Steps the page maps onto its list: BACKGROUND_REMOVED is shown as part of ANALYZING, EXPANDED of EXPANDING.
  if (status.currentStep === "BACKGROUND_REMOVED") $('#steps li[data-step="ANALYZING"]').dataset.status = "active";
  if (status.currentStep === "EXPANDED") $('#steps li[data-step="EXPANDING"]').dataset.status = "active";
}

async function process(file) {
  if (running) return;
  running = true;
  Object.assign(demo, { phases: [], resize: null, upload: null, statuses: [], result: null, error: null, sentence: null,
    times: {} });
  $("#progress").hidden = false;
  $("#result").hidden = true;
  $("#error").hidden = true;
  for (const id of ["optimise", "upload", "pipeline"]) setStage(id, "pending", "", "");
  $("#upload-bar").value = 0;
  $("#job-bar").value = 0;
  for (const item of document.querySelectorAll("#steps li")) item.dataset.status = "pending";
  const clothId = newClothId();
  let stage = "optimise";
  try {
    // 1. Shrink it in the browser: the first, free speed-up.
    setPhase("optimising", "Optimising image…");
    setStage("optimise", "active", "…");
    let started = performance.now();
    const small = await resizeForUpload(file);
    demo.times.optimise = performance.now() - started;
    demo.resize = { ...small, file: undefined, fileName: small.file.name };
    const size = small.width ? ` · ${small.width}×${small.height}` : "";
    setStage("optimise", "done", formatMs(demo.times.optimise), small.resized
      ? `${formatBytes(small.bytesBefore)} → ${formatBytes(small.bytesAfter)}${size}`
      : `Kept the original (${formatBytes(small.bytesBefore)}${size}): ${small.fallback}`);

    // 2. Upload it straight to the bucket.
    stage = "upload";
    setPhase("uploading", "Uploading…");
    setStage("upload", "active", "0 %");
    started = performance.now();
    demo.upload = await uploadPhoto(small.file, {
      uploadUrlEndpoint: config.uploadUrlEndpoint, authToken: config.authToken, userId: config.userId, clothId,
      category: document.getElementById("category").value || undefined,
      onProgress: (p) => {
        $("#upload-bar").value = p.percent;
        setStage("upload", "active", `${p.percent} %`, p.phase === "retry"
          ? `Retrying in ${formatMs(p.retryInMs)} (${p.error})` : `${formatBytes(p.loaded)} of ${formatBytes(p.total)}`);
      },
    });
    demo.times.upload = performance.now() - started;
    setStage("upload", "done", formatMs(demo.times.upload), `${formatBytes(demo.upload.bytes)} sent as ${demo.upload.contentType}`);

    // 3. Follow the job until its result document arrives.
    stage = "pipeline";
    setPhase("processing", "Processing…");
    setStage("pipeline", "active", "0 %");
    started = performance.now();
    const result = await followJob({
      statusEndpoint: config.statusEndpoint, authToken: config.authToken, userId: config.userId, clothId,
      objectKey: demo.upload.objectKey, intervalMs: 400,
      onProgress: (status) => {
        demo.statuses.push({ state: status.state, currentStep: status.currentStep, progressPercentage: status.progressPercentage });
        $("#job-bar").value = status.progressPercentage;
        setStage("pipeline", "active", `${status.progressPercentage} %`);
        showSteps(status);
      },
    });
    demo.times.pipeline = performance.now() - started;
    demo.result = result;
    render(result);
    if (result.success) {
      setStage("pipeline", "done", formatMs(demo.times.pipeline));
      setPhase("done", `Done: ${result.allSegmentedItems.length} garment${result.allSegmentedItems.length === 1 ? "" : "s"} found.`);
    } else {
      setStage("pipeline", "failed", "failed");
      setPhase("failed", `The photo could not be processed: ${result.errorMessage || result.errorCode}`);
    }
  } catch (error) {
    demo.error = String(error && error.message || error);
    demo.sentence = sentenceFor(error, stage);
    setStage(stage, "failed", "failed", demo.sentence);
    setPhase("failed", demo.sentence);
  } finally {
    running = false;
  }
}

function render(result) {
  $("#result").hidden = false;
  const error = $("#error");
  error.hidden = result.success;
  error.textContent = result.success ? "" : `${result.errorCode}: ${result.errorMessage}`;
  $(".result-grid").hidden = !result.success;
  const cutout = $("#cutout");
  if (result.removedBgImageUrl) {
    cutout.src = result.removedBgImageUrl;
    $("#cutout-link").href = result.removedBgImageUrl;
  }
  const items = $("#items");
  items.replaceChildren();
  $("#item-count").textContent = result.success ? `(${result.allSegmentedItems.length})` : "";
  result.allSegmentedItems.forEach((item, index) => {
    const li = document.createElement("li");
    li.className = "item";
    const link = document.createElement("a");
    link.href = item.url;
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.src = item.thumbnailUrl || item.url;
    img.alt = `Garment ${index + 1}`;
    img.loading = "lazy";
    link.append(img);
    const category = document.createElement("span");
    category.className = item.category ? "category" : "category none";
    category.textContent = item.category || "no category";
    const meta = document.createElement("span");
    meta.className = "meta";
    const [x0, y0, x1, y1] = item.bbox;
    meta.textContent = `${item.label} · ${x1 - x0}×${y1 - y0} px`;
    li.append(link, category, meta);
    items.append(li);
  });
  const rows = [];
  const order = Object.keys(STAGE_NAMES);
  const rank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
  const timings = Object.entries(result.timings || {}).sort(([a], [b]) => rank(a) - rank(b));
  const total = timings.reduce((sum, [, ms]) => sum + ms, 0);
  const longest = Math.max(1, ...timings.map(([, ms]) => ms));
  for (const [name, ms] of timings) rows.push(timingRow(STAGE_NAMES[name] || name, ms, ms / longest, name));
  rows.push(timingRow("Pipeline, all stages", total, null, "total"));
  if (demo.times.optimise !== undefined) rows.push(timingRow("In this browser: optimising", demo.times.optimise, null, "browser-optimise"));
  if (demo.times.upload !== undefined) rows.push(timingRow("In this browser: upload", demo.times.upload, null, "browser-upload"));
  $("#timings tbody").replaceChildren(...rows);
  const providers = Object.entries(result.providers || {}).map(([stage, who]) => `${stage}: ${who}`).join(", ");
  $("#result-meta").textContent = `Job ${result.jobId}${result.cacheHit ? " · served from the cache" : ""}` +
    (providers ? ` · ${providers}` : "");
}

function timingRow(label, ms, share, key) {
  const tr = document.createElement("tr");
  tr.dataset.stage = key;
  if (key === "total") tr.className = "total";
  const name = document.createElement("td");
  name.textContent = label;
  const value = document.createElement("td");
  value.className = "ms";
  value.textContent = formatMs(ms);
  const bar = document.createElement("td");
  if (share !== null) {
    const fill = document.createElement("div");
    fill.className = "bar";
    fill.style.width = `${Math.max(1, Math.round(share * 100))}%`;
    bar.append(fill);
  }
  tr.append(name, value, bar);
  return tr;
}

// -- picking and dropping ----------------------------------------------------------------------------
const input = $("#photo");
input.addEventListener("change", () => {
  if (input.files && input.files[0]) process(input.files[0]);
  input.value = "";
});
const drop = $("#drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) process(file);
});
$("#again").addEventListener("click", () => {
  $("#result").hidden = true;
  $("#progress").hidden = true;
  setPhase("idle", "Ready.");
  input.click();
});
// The step percentages and the accepted formats come from the server (shared/documents.py's table,
// shared/formats.py), never written here.
for (const item of document.querySelectorAll("#steps li")) {
  const percent = (config.stepPercent || {})[item.dataset.step];
  if (percent !== undefined) item.querySelector("span").textContent = `${percent}\u00a0%`;
}
if (config.formats) $("#formats").textContent = config.formats;
if (!config.uploadUrlEndpoint || !config.statusEndpoint) {
  setPhase("failed", "Not configured: start `make dev` and open the page it prints.");
} else {
  setPhase("idle", "Ready.");
}
