/** Uploading files from the browser.
 *
 * Small files go in one multipart POST; large ones use Orchard's resumable
 * protocol (POST /api/v1/uploads → PATCH chunks at Upload-Offset → POST
 * …/complete with the SHA-256). The chunk loop resumes where the server says
 * it is: after a failed chunk, after a reload (the upload id is remembered per
 * file), or after a response that was lost on the way back.
 */

import { csrfHeaders, UI_HEADERS, type UploadResult } from "../api/client";
import { ApiError, parseApiError } from "../api/errors";
import { Sha256 } from "./sha256";

export const MiB = 1024 * 1024;
export const CHUNK_SIZE = 4 * MiB;
export const RESUMABLE_THRESHOLD = 8 * MiB;

export interface UploadTarget {
  project: string;
  pkg: string;
  version: string;
  filename: string;
}

export interface Progress {
  phase: "preparing" | "uploading" | "finishing" | "done";
  loaded: number;
  total: number;
}

export interface Chunk {
  start: number;
  end: number; // exclusive
}

/** The chunks still to send for a file of `size` bytes, from `offset`. */
export function planChunks(size: number, offset: number, chunkSize: number = CHUNK_SIZE): Chunk[] {
  if (chunkSize <= 0) throw new Error("chunk size must be positive");
  const chunks: Chunk[] = [];
  for (let start = Math.max(0, offset); start < size; start += chunkSize) {
    chunks.push({ start, end: Math.min(size, start + chunkSize) });
  }
  return chunks;
}

export function useResumable(size: number, threshold: number = RESUMABLE_THRESHOLD): boolean {
  return size > threshold;
}

/** What the resumable loop needs from the server (an XHR one in the app, a fake in tests). */
export interface ChunkTransport {
  create(target: UploadTarget, size: number): Promise<{ id: string; offset: number }>;
  offset(id: string): Promise<number>;
  send(id: string, offset: number, bytes: Uint8Array, onProgress: (loaded: number) => void): Promise<number>;
  complete(id: string, sha256: string): Promise<UploadResult>;
  abort(id: string): Promise<void>;
}

/** Remembers upload ids so that the same file resumes after a reload. */
export interface ResumeStore {
  get(key: string): string | null;
  set(key: string, id: string): void;
  delete(key: string): void;
}

export function memoryStore(): ResumeStore {
  const map = new Map<string, string>();
  return {
    get: (k) => map.get(k) ?? null,
    set: (k, v) => void map.set(k, v),
    delete: (k) => void map.delete(k),
  };
}

export function localStore(prefix = "orchard.upload:"): ResumeStore {
  const ls = globalThis.localStorage;
  if (!ls) return memoryStore();
  return {
    get: (k) => ls.getItem(prefix + k),
    set: (k, v) => ls.setItem(prefix + k, v),
    delete: (k) => ls.removeItem(prefix + k),
  };
}

export interface FileLike {
  size: number;
  name?: string;
  lastModified?: number;
  slice(start?: number, end?: number): Blob;
}

export function resumeKey(target: UploadTarget, file: FileLike): string {
  return [target.project, target.pkg, target.version, target.filename, file.size, file.lastModified ?? 0].join("\u0000");
}

async function readBytes(file: FileLike, start: number, end: number): Promise<Uint8Array> {
  return new Uint8Array(await file.slice(start, end).arrayBuffer());
}

export interface ResumableOptions {
  chunkSize?: number;
  retries?: number;
  store?: ResumeStore;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Upload `file` with the resumable protocol; resumes a remembered upload. */
export async function resumableUpload(
  file: FileLike,
  target: UploadTarget,
  transport: ChunkTransport,
  options: ResumableOptions = {},
): Promise<UploadResult> {
  const chunkSize = options.chunkSize ?? CHUNK_SIZE;
  const retries = options.retries ?? 5;
  const store = options.store ?? memoryStore();
  const sleep = options.sleep ?? defaultSleep;
  const report = options.onProgress ?? (() => undefined);
  const size = file.size;
  const key = resumeKey(target, file);

  let id = store.get(key);
  let offset = 0;
  if (id) {
    try {
      offset = await transport.offset(id);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      id = null; // expired or finished elsewhere: start again
    }
  }
  if (!id) {
    const created = await transport.create(target, size);
    id = created.id;
    offset = created.offset;
    store.set(key, id);
  }

  // The hash covers exactly the bytes the server holds: [0, offset).
  let hasher = new Sha256();
  const hashRange = async (start: number, end: number) => {
    for (const c of planChunks(end, start, chunkSize)) hasher.update(await readBytes(file, c.start, c.end));
  };
  report({ phase: "preparing", loaded: offset, total: size });
  await hashRange(0, offset);

  let failures = 0;
  while (offset < size) {
    if (options.signal?.aborted) throw new ApiError(0, "aborted", "Upload paused");
    const end = Math.min(size, offset + chunkSize);
    const bytes = await readBytes(file, offset, end);
    const start = offset;
    try {
      report({ phase: "uploading", loaded: start, total: size });
      const next = await transport.send(id, start, bytes, (loaded) =>
        report({ phase: "uploading", loaded: start + Math.min(loaded, bytes.length), total: size }),
      );
      if (next !== end) throw new ApiError(409, "conflict", `server is at offset ${next}, expected ${end}`);
      hasher.update(bytes);
      offset = end;
      failures = 0;
    } catch (e) {
      if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 409 && e.status !== 408 && e.status !== 429) {
        throw e; // refused, not interrupted: retrying cannot help
      }
      failures += 1;
      if (failures > retries) throw e;
      await sleep(Math.min(8000, 250 * 2 ** (failures - 1)));
      let server: number;
      try {
        server = await transport.offset(id);
      } catch {
        continue; // still unreachable: try the same chunk again
      }
      if (server > offset) {
        await hashRange(offset, server); // the chunk arrived; only its answer was lost
      } else if (server < offset) {
        hasher = new Sha256();
        await hashRange(0, server);
      }
      offset = server;
    }
  }
  report({ phase: "finishing", loaded: size, total: size });
  try {
    const result = await transport.complete(id, hasher.hex());
    report({ phase: "done", loaded: size, total: size });
    return result;
  } finally {
    store.delete(key); // complete either stored the file or discarded the upload
  }
}

// --- XMLHttpRequest implementations (progress events need XHR) -----------

function xhrJson<T>(
  method: string,
  url: string,
  body: XMLHttpRequestBodyInit | null,
  headers: Record<string, string>,
  onProgress?: (loaded: number, total: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    for (const [k, v] of Object.entries({ ...headers, ...UI_HEADERS, ...csrfHeaders() })) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => {
      let parsed: unknown = xhr.responseText;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* keep text */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed as T);
      else reject(parseApiError(xhr.status, parsed));
    };
    xhr.onerror = () => reject(parseApiError(0, null));
    xhr.ontimeout = () => reject(new ApiError(408, "timeout", "The upload timed out"));
    xhr.send(body);
  });
}

const enc = encodeURIComponent;

/** One multipart POST with progress (files up to the resumable threshold). */
export function multipartUpload(
  file: File,
  target: UploadTarget,
  onProgress?: (p: Progress) => void,
): Promise<UploadResult> {
  const form = new FormData();
  form.append("version", target.version);
  form.append("file", file, target.filename);
  return xhrJson<UploadResult>(
    "POST",
    `/api/v1/project/${enc(target.project)}/packages/${enc(target.pkg)}/upload`,
    form,
    {},
    (loaded, total) => onProgress?.({ phase: loaded >= total ? "finishing" : "uploading", loaded, total }),
  );
}

export const xhrTransport: ChunkTransport = {
  async create(target, size) {
    const body = JSON.stringify({
      project: target.project,
      package: target.pkg,
      version: target.version,
      filename: target.filename,
      size,
    });
    const s = await xhrJson<{ id: string; offset: number }>("POST", "/api/v1/uploads", body, {
      "Content-Type": "application/json",
    });
    return { id: s.id, offset: s.offset };
  },
  async offset(id) {
    const s = await xhrJson<{ offset: number }>("GET", `/api/v1/uploads/${enc(id)}`, null, {});
    return s.offset;
  },
  async send(id, offset, bytes, onProgress) {
    const s = await xhrJson<{ offset: number }>(
      "PATCH",
      `/api/v1/uploads/${enc(id)}`,
      new Blob([bytes as BlobPart]),
      { "Upload-Offset": String(offset), "Content-Type": "application/octet-stream" },
      (loaded) => onProgress(loaded),
    );
    return s.offset;
  },
  complete(id, sha256) {
    return xhrJson<UploadResult>("POST", `/api/v1/uploads/${enc(id)}/complete`, JSON.stringify({ sha256 }), {
      "Content-Type": "application/json",
    });
  },
  async abort(id) {
    await xhrJson<void>("DELETE", `/api/v1/uploads/${enc(id)}`, null, {});
  },
};

/** Upload one file the right way for its size. */
export function uploadFile(
  file: File,
  target: UploadTarget,
  onProgress?: (p: Progress) => void,
  options: { threshold?: number; chunkSize?: number } = {},
): Promise<UploadResult> {
  if (useResumable(file.size, options.threshold)) {
    return resumableUpload(file, target, xhrTransport, {
      store: localStore(),
      onProgress,
      chunkSize: options.chunkSize,
    });
  }
  return multipartUpload(file, target, onProgress);
}
