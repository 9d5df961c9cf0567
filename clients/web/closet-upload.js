/**
 * closet-upload.js — the browser side of the ClosetConnect cloth pipeline.
 *
 * A dependency-free ES module for the app's frontend (React or not). Three calls, in order:
 *
 *   import { resizeForUpload, uploadPhoto, followJob } from "./closet-upload.js";
 *
 *   const small = await resizeForUpload(file);                    // 1. shrink in the browser
 *   const upload = await uploadPhoto(small.file, {                // 2. PUT straight to the bucket
 *     uploadUrlEndpoint, authToken, userId, clothId,
 *     onProgress: (p) => setUploadPercent(p.percent),
 *   });
 *   const result = await followJob({                              // 3. poll until the result
 *     statusEndpoint, authToken, userId, clothId, objectKey: upload.objectKey,
 *     onProgress: (s) => setStep(s.currentStep, s.progressPercentage),
 *   });
 *   if (result.success) show(result.removedBgImageUrl, result.allSegmentedItems);
 *
 * Nothing photo-sized passes through the app's backend: the photo goes to a signed URL, and the
 * result's images are URLs too. No dependency, no build step: modern browsers (createImageBitmap,
 * XMLHttpRequest, fetch, AbortController).
 *
 * @module closet-upload
 */

/** Longest side the pipeline works at (CLOSET_WORKING_MAX_SIDE): more pixels are wasted bytes. */
export const DEFAULT_MAX_SIDE = 1200;
/** JPEG quality of the shrunk photo. */
export const DEFAULT_QUALITY = 0.9;

const TYPES_BY_EXTENSION = {
  jpg: "image/jpeg", jpeg: "image/jpeg", jfif: "image/jpeg", png: "image/png", webp: "image/webp",
  heic: "image/heic", heif: "image/heif", avif: "image/avif", gif: "image/gif",
};
/** Types whose pixels may be transparent: their transparency is kept (as PNG). */
const ALPHA_TYPES = new Set(["image/png", "image/webp", "image/gif", "image/avif", "image/heic", "image/heif"]);

/**
 * @typedef {Object} ResizeResult
 * @property {File} file            What to upload: the shrunk photo, or the original on fallback.
 * @property {boolean} resized      True when `file` is a new, re-encoded image.
 * @property {number} bytesBefore   Size of the original.
 * @property {number} bytesAfter    Size of `file`.
 * @property {string} type          MIME type of `file` (image/jpeg, image/png, or the original's).
 * @property {?number} width        Upright width of `file` in pixels (null when it could not be decoded).
 * @property {?number} height       Upright height of `file` in pixels (null when it could not be decoded).
 * @property {?number} originalWidth   Upright width of the original (null when it could not be decoded).
 * @property {?number} originalHeight  Upright height of the original (null when it could not be decoded).
 * @property {?string} fallback     Why the original is handed back ("already small", "undecodable: ...",
 *                                  "error: ..."); null when `file` was re-encoded.
 */

/**
 * Shrink a photo before upload: longest side at most `maxSide` (never upscaled), upright (EXIF
 * orientation applied, so a phone's portrait photo stays portrait), re-encoded as JPEG — or as PNG
 * when the picture has transparent pixels. Never throws: a photo already within `maxSide` is handed
 * back untouched (no second lossy encoding), and so is one the browser cannot decode (HEIC in most
 * browsers) or when anything fails — the server decodes HEIC, AVIF, ... and applies EXIF itself.
 *
 * @param {File|Blob} file  The photo the user picked.
 * @param {Object} [options]
 * @param {number} [options.maxSide=1200]  Longest side of the output, in pixels.
 * @param {number} [options.quality=0.9]   JPEG quality, 0..1.
 * @returns {Promise<ResizeResult>}
 */
export async function resizeForUpload(file, { maxSide = DEFAULT_MAX_SIDE, quality = DEFAULT_QUALITY } = {}) {
  const original = asFile(file);
  const bytesBefore = original.size;
  const keep = (fallback, dims = {}) => ({
    file: original, resized: false, bytesBefore, bytesAfter: bytesBefore, type: typeOf(original),
    width: dims.width ?? null, height: dims.height ?? null,
    originalWidth: dims.width ?? null, originalHeight: dims.height ?? null, fallback,
  });
  let source;
  try {
    source = await decodeUpright(original);
  } catch (error) {
    return keep(`undecodable: ${errorText(error)}`);
  }
  try {
    const { width, height } = source;
    const dims = { width, height };
    if (!width || !height) return keep("undecodable: empty image");
    const scale = Math.min(1, maxSide / Math.max(width, height));
    if (scale === 1) return keep("already small", dims); // lossless, and the server applies EXIF itself
    const outWidth = Math.max(1, Math.round(width * scale));
    const outHeight = Math.max(1, Math.round(height * scale));
    const canvas = makeCanvas(outWidth, outHeight);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = "high";
    context.drawImage(source.image, 0, 0, outWidth, outHeight);
    const mayHaveAlpha = ALPHA_TYPES.has(typeOf(original));
    const transparent = mayHaveAlpha && hasTransparency(context, outWidth, outHeight);
    if (!transparent) {
      // JPEG has no alpha: paint the picture over white, as a viewer would show it.
      context.globalCompositeOperation = "destination-over";
      context.fillStyle = "#fff";
      context.fillRect(0, 0, outWidth, outHeight);
    }
    const type = transparent ? "image/png" : "image/jpeg";
    const blob = await encodeCanvas(canvas, type, quality);
    if (!blob || blob.size === 0 || (blob.type && blob.type !== type)) return keep("error: the browser could not encode", dims);
    const name = renamed(original.name || "photo", type);
    return {
      file: new File([blob], name, { type, lastModified: Date.now() }), resized: true,
      bytesBefore, bytesAfter: blob.size, type, width: outWidth, height: outHeight,
      originalWidth: width, originalHeight: height, fallback: null,
    };
  } catch (error) {
    return keep(`error: ${errorText(error)}`, { width: source.width, height: source.height });
  } finally {
    source.close?.();
  }
}

/**
 * @typedef {Object} UploadProgress
 * @property {"url"|"upload"|"retry"|"done"} phase  Asking for the URL, sending bytes, waiting to retry, finished.
 * @property {number} loaded    Bytes sent so far in this attempt.
 * @property {number} total     Bytes to send.
 * @property {number} percent   0..100.
 * @property {number} attempt   1 for the first try.
 * @property {number} [retryInMs]  With phase "retry": the backoff before the next attempt.
 * @property {string} [error]      With phase "retry": what went wrong.
 */

/**
 * @typedef {Object} UploadResult
 * @property {string} objectKey    `uploads/{userId}/{clothId}/{fileName}`: give it to followJob.
 * @property {string} fileName
 * @property {string} contentType
 * @property {number} bytes
 * @property {number} attempts     How many PUTs it took.
 */

/**
 * Upload a photo straight to the uploads bucket: ask the upload_url function for a signed PUT URL
 * (POST `{userId, clothId, fileName, contentType}` with `Authorization: Bearer <authToken>`), then
 * PUT the bytes with exactly the headers it returned (the URL is bound to them), reporting upload
 * progress. A failed attempt (network error, timeout, 408, 429, 5xx; a 403 after asking for a fresh
 * URL, as for an expired one) is retried up to `retries` times with exponential backoff and jitter.
 * Other answers (400, 401, 413 ...) fail at once with an UploadError carrying `status`.
 *
 * @param {File|Blob} file  Typically `(await resizeForUpload(photo)).file`.
 * @param {Object} options
 * @param {string} options.uploadUrlEndpoint  URL of the upload_url function (or the app backend's proxy of it).
 * @param {string} options.authToken          Bearer token for it.
 * @param {string} options.userId             Letters, digits, '-' and '_'.
 * @param {string} options.clothId            Letters, digits, '-' and '_'.
 * @param {string} [options.fileName]         Defaults to the file's name.
 * @param {string} [options.category]         The user's pick: TOP, BOTTOM, SHOES or ACC (signed into the URL
 *                                            as x-goog-meta-category; the pipeline's result then carries it).
 * @param {(p: UploadProgress) => void} [options.onProgress]
 * @param {number} [options.retries=3]        Retries after the first attempt.
 * @param {number} [options.backoffMs=500]    First backoff; doubles each retry (capped at 8 s).
 * @param {number} [options.timeoutMs=120000] Per-attempt timeout of the PUT.
 * @param {AbortSignal} [options.signal]      Cancels the upload.
 * @returns {Promise<UploadResult>}
 */
export async function uploadPhoto(file, {
  uploadUrlEndpoint, authToken, userId, clothId, fileName, category, onProgress = () => {}, retries = 3,
  backoffMs = 500, timeoutMs = 120000, signal,
} = {}) {
  if (!uploadUrlEndpoint) throw new TypeError("uploadPhoto: uploadUrlEndpoint is required");
  const blob = asFile(file);
  const name = fileName || blob.name || "photo.jpg";
  const contentType = typeOf(blob, name);
  const total = blob.size;
  let signed = null;
  let attempt = 0;
  for (;;) {
    attempt += 1;
    try {
      if (!signed || Date.parse(signed.expiresAt) - Date.now() < 30000) {
        onProgress({ phase: "url", loaded: 0, total, percent: 0, attempt });
        const request = { userId, clothId, fileName: name, contentType, ...(category ? { category } : {}) };
        signed = await requestUploadUrl(uploadUrlEndpoint, authToken, request, signal);
      }
      await putWithProgress(signed, blob, { signal, timeoutMs, onProgress: (loaded) =>
        onProgress({ phase: "upload", loaded, total, percent: total ? Math.min(100, Math.round(100 * loaded / total)) : 100, attempt }) });
      onProgress({ phase: "done", loaded: total, total, percent: 100, attempt });
      return { objectKey: signed.objectKey, fileName: name, contentType, bytes: total, attempts: attempt };
    } catch (error) {
      if (signal?.aborted || !error.retryable || attempt > retries) throw error;
      if (error.status === 403) signed = null; // e.g. an expired signature: ask for a new URL
      const wait = Math.min(8000, backoffMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      onProgress({ phase: "retry", loaded: 0, total, percent: 0, attempt, retryInMs: Math.round(wait), error: error.message });
      await sleep(wait, signal);
    }
  }
}

/**
 * @typedef {Object} JobStatus
 * @property {string} jobId
 * @property {"processing"|"completed"|"failed"} state
 * @property {number} progressPercentage  The app's percentages (shared/documents.py STEP_PERCENT): 0 queued,
 *                                        then each stage's step, 100 finished.
 * @property {string} currentStep         QUEUED, REMOVING_BACKGROUND, BACKGROUND_REMOVED, ANALYZING,
 *                                        ANALYZED, EXPANDING, EXPANDED, COMPLETED or FAILED.
 * @property {?Object} result             The result document once finished (see the README), else null.
 */

/**
 * Follow a job until its result document arrives, by polling the status function
 * (GET `?userId&clothId&jobId` or `?userId&clothId&objectKey`, `Authorization: Bearer <authToken>`).
 * Resolves with the result document, for a failed job too (`result.success === false`, with
 * `errorCode` and `errorMessage`). A 404 is taken as "not visible yet" for `notFoundGraceMs`;
 * network errors and 5xx are retried until `timeoutMs`; 400/401/403 reject at once.
 *
 * @param {Object} options
 * @param {string} options.statusEndpoint   URL of the status function.
 * @param {string} options.authToken        Bearer token for it.
 * @param {string} options.userId
 * @param {string} [options.clothId]        Required with jobId; with objectKey it is read from the key.
 * @param {string} [options.jobId]          The job's id (from a result or a progress event) ...
 * @param {string} [options.objectKey]      ... or the upload's object key, as uploadPhoto returns it.
 * @param {string|number} [options.generation]  With objectKey: a specific upload generation.
 * @param {(s: JobStatus) => void} [options.onProgress]  Called after every poll.
 * @param {number} [options.intervalMs=1000]   Time between polls.
 * @param {number} [options.timeoutMs=300000]  Give up after this long (rejects with name "TimeoutError").
 * @param {number} [options.notFoundGraceMs=30000]
 * @param {AbortSignal} [options.signal]
 * @returns {Promise<Object>} The result document.
 */
export async function followJob({
  statusEndpoint, authToken, userId, clothId, jobId, objectKey, generation, onProgress = () => {},
  intervalMs = 1000, timeoutMs = 300000, notFoundGraceMs = 30000, signal,
} = {}) {
  if (!statusEndpoint) throw new TypeError("followJob: statusEndpoint is required");
  if (!jobId && !objectKey) throw new TypeError("followJob: jobId or objectKey is required");
  const url = new URL(statusEndpoint, globalThis.location?.href);
  const query = { userId, clothId, jobId, objectKey, generation };
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const started = Date.now();
  let lastError = null;
  for (;;) {
    if (signal?.aborted) throw abortError();
    try {
      const response = await fetch(url, { headers: authHeaders(authToken), cache: "no-store", signal });
      if (response.ok) {
        const status = await response.json();
        lastError = null;
        onProgress(status);
        if (status.state === "completed" || status.state === "failed") {
          if (status.result) return status.result;
        }
      } else if (response.status === 404) { // the job may not be visible yet
        lastError = await answerError(response);
        lastError.retryable = false;
        if (Date.now() - started >= notFoundGraceMs) throw lastError;
      } else if (retryableStatus(response.status)) {
        lastError = await answerError(response);
      } else {
        throw await answerError(response);
      }
    } catch (error) {
      if (error instanceof UploadError || signal?.aborted) throw error;
      lastError = error; // network: try again
    }
    if (Date.now() - started > timeoutMs) {
      const timeout = new Error(`followJob: no result within ${Math.round(timeoutMs / 1000)} s` +
        (lastError ? ` (last error: ${lastError.message})` : ""));
      timeout.name = "TimeoutError";
      throw timeout;
    }
    await sleep(intervalMs, signal);
  }
}

/**
 * An HTTP answer that ends an upload or a poll: `status` is the HTTP status (0: network);
 * `userMessage` is the sentence for a person that the server sent with its refusal (upload_url and
 * status send one with every refusal), or null when the answer had none (network, a proxy's 502).
 */
export class UploadError extends Error {
  /** @param {number} status @param {string} message @param {boolean} [retryable] @param {?string} [userMessage] */
  constructor(status, message, retryable = false, userMessage = null) {
    super(message);
    this.name = "UploadError";
    this.status = status;
    this.retryable = retryable;
    this.userMessage = userMessage;
  }
}

// -- internals ------------------------------------------------------------------------------------

function asFile(file) {
  if (typeof File !== "undefined" && file instanceof File) return file;
  return new File([file], "photo", { type: file?.type || "" });
}

/** The file's own type when the browser knows it as an image, else one guessed from the name. */
function typeOf(file, name = file.name) {
  return file.type && file.type.startsWith("image/") ? file.type : guessType(name);
}

function guessType(name) {
  const extension = String(name || "").split(".").pop().toLowerCase();
  return TYPES_BY_EXTENSION[extension] || "application/octet-stream";
}

function renamed(name, type) {
  const stem = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
  return `${stem || "photo"}.${type === "image/png" ? "png" : "jpg"}`;
}

function errorText(error) {
  return (error && (error.message || error.name)) || String(error);
}

/** Decoded pixels, upright: {image, width, height, close}. Throws when the browser cannot decode. */
async function decodeUpright(file) {
  if (typeof createImageBitmap === "function") {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // InvalidStateError & co: not decodable
      bitmap = null; // an older browser refusing the option: try without it (EXIF is its default now)
    }
    if (!bitmap) bitmap = await createImageBitmap(file);
    return { image: bitmap, width: bitmap.width, height: bitmap.height, close: () => bitmap.close() };
  }
  // No createImageBitmap: an <img> (browsers apply EXIF orientation to images by default).
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return { image: img, width: img.naturalWidth, height: img.naturalHeight, close: () => {} };
  } finally {
    URL.revokeObjectURL(url);
  }
}

function makeCanvas(width, height) {
  if (typeof OffscreenCanvas === "function") return new OffscreenCanvas(width, height);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

function encodeCanvas(canvas, type, quality) {
  if (typeof canvas.convertToBlob === "function") return canvas.convertToBlob({ type, quality });
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

function hasTransparency(context, width, height) {
  const rows = Math.max(1, Math.min(height, Math.floor(4_000_000 / width))); // bounded memory per read
  for (let y = 0; y < height; y += rows) {
    const data = context.getImageData(0, y, width, Math.min(rows, height - y)).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] < 255) return true;
  }
  return false;
}

function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The refusal's {error, message}: `message` is the server's sentence for a person, when it sent one. */
async function errorBody(response) {
  try {
    const body = await response.json();
    return { error: body.error || `HTTP ${response.status}`, message: typeof body.message === "string" ? body.message : null };
  } catch {
    return { error: `HTTP ${response.status}`, message: null };
  }
}

async function answerError(response, prefix = "") {
  const { error, message } = await errorBody(response);
  return new UploadError(response.status, `${prefix}${error}`, retryableStatus(response.status), message);
}

function retryableStatus(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

async function requestUploadUrl(endpoint, token, body, signal) {
  let response;
  try {
    response = await fetch(new URL(endpoint, globalThis.location?.href), {
      method: "POST", headers: { "Content-Type": "application/json", ...authHeaders(token) },
      body: JSON.stringify(body), cache: "no-store", signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new UploadError(0, `upload_url unreachable: ${errorText(error)}`, true);
  }
  if (!response.ok) throw await answerError(response, "upload_url: ");
  const signed = await response.json();
  if (!signed.url || !signed.objectKey) throw new UploadError(502, "upload_url: malformed answer", true);
  return signed;
}

function putWithProgress(signed, blob, { signal, timeoutMs, onProgress }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(signed.method || "PUT", signed.url);
    for (const [name, value] of Object.entries(signed.headers || {})) xhr.setRequestHeader(name, value);
    xhr.timeout = timeoutMs;
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    const done = (outcome) => {
      signal?.removeEventListener("abort", abort);
      outcome();
    };
    xhr.onload = () => done(() => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size);
        resolve();
      } else {
        const text = (xhr.responseText || "").slice(0, 200);
        reject(new UploadError(xhr.status, `upload failed: HTTP ${xhr.status} ${text}`.trim(),
          retryableStatus(xhr.status) || xhr.status === 403));
      }
    });
    xhr.onerror = () => done(() => reject(new UploadError(0, "upload failed: network error", true)));
    xhr.ontimeout = () => done(() => reject(new UploadError(0, "upload failed: timed out", true)));
    xhr.onabort = () => done(() => reject(abortError()));
    xhr.send(blob);
  });
}

function abortError() {
  return typeof DOMException === "function" ? new DOMException("aborted", "AbortError") : new Error("aborted");
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(abortError()); };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
