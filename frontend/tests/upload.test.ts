import { createHash } from "node:crypto";

import { describe, expect, test } from "vitest";

import type { UploadResult } from "../src/api/client";
import { ApiError } from "../src/api/errors";
import { sha256Hex, Sha256 } from "../src/lib/sha256";
import {
  memoryStore,
  planChunks,
  resumableUpload,
  resumeKey,
  useResumable,
  type ChunkTransport,
  type Progress,
  type UploadTarget,
} from "../src/lib/upload";

const target: UploadTarget = { project: "demo", pkg: "big", version: "1.0", filename: "big.bin" };

function bytes(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const nodeSha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** An in-memory server speaking the resumable protocol, with injectable faults. */
class FakeServer implements ChunkTransport {
  data = new Map<string, number[]>();
  sizes = new Map<string, number>();
  created = 0;
  sends: number[] = [];
  faults: Array<(id: string, offset: number, chunk: Uint8Array) => void> = [];
  completedWith: string | null = null;

  async create(_t: UploadTarget, size: number) {
    const id = `u${++this.created}`;
    this.data.set(id, []);
    this.sizes.set(id, size);
    return { id, offset: 0 };
  }
  async offset(id: string) {
    const d = this.data.get(id);
    if (!d) throw new ApiError(404, "not_found", "upload not found or expired");
    return d.length;
  }
  async send(id: string, offset: number, chunk: Uint8Array, onProgress: (n: number) => void) {
    this.sends.push(offset);
    const fault = this.faults.shift();
    const d = this.data.get(id)!;
    if (offset !== d.length) throw new ApiError(409, "conflict", "wrong offset");
    fault?.(id, offset, chunk);
    onProgress(chunk.length / 2);
    d.push(...chunk);
    onProgress(chunk.length);
    return d.length;
  }
  async complete(id: string, sha256: string): Promise<UploadResult> {
    const d = Uint8Array.from(this.data.get(id)!);
    this.completedWith = sha256;
    if (nodeSha(d) !== sha256) throw new ApiError(400, "checksum_mismatch", "hash mismatch");
    this.data.delete(id);
    return { sha256, size: d.length } as UploadResult;
  }
  async abort(id: string) {
    this.data.delete(id);
  }
}

function blobFile(content: Uint8Array) {
  const blob = new Blob([content as BlobPart]);
  return Object.assign(blob, { name: "big.bin", lastModified: 42 });
}

const noSleep = async () => undefined;

describe("sha256", () => {
  test("matches node's crypto for every length around the block edges", () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
      const b = bytes(n, n + 1);
      expect(sha256Hex(b)).toBe(nodeSha(b));
    }
    expect(sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("incremental updates in odd pieces give the same digest", () => {
    const b = bytes(5000);
    const h = new Sha256();
    for (let i = 0; i < b.length; i += 37) h.update(b.subarray(i, i + 37));
    expect(h.hex()).toBe(nodeSha(b));
  });
});

describe("planChunks", () => {
  test("covers the rest of the file from the offset", () => {
    expect(planChunks(10, 0, 4)).toEqual([{ start: 0, end: 4 }, { start: 4, end: 8 }, { start: 8, end: 10 }]);
    expect(planChunks(10, 8, 4)).toEqual([{ start: 8, end: 10 }]);
    expect(planChunks(10, 10, 4)).toEqual([]);
    expect(planChunks(0, 0, 4)).toEqual([]);
    expect(() => planChunks(10, 0, 0)).toThrow();
  });

  test("the threshold picks the resumable protocol for large files only", () => {
    expect(useResumable(8 * 1024 * 1024)).toBe(false);
    expect(useResumable(8 * 1024 * 1024 + 1)).toBe(true);
    expect(useResumable(10, 5)).toBe(true);
  });
});

describe("resumableUpload", () => {
  test("sends every chunk in order, reports progress and completes with the SHA-256", async () => {
    const content = bytes(10_000);
    const server = new FakeServer();
    const seen: Progress[] = [];
    const result = await resumableUpload(blobFile(content), target, server, { chunkSize: 4096, onProgress: (p) => seen.push(p), sleep: noSleep });
    expect(server.sends).toEqual([0, 4096, 8192]);
    expect(result.sha256).toBe(nodeSha(content));
    const loaded = seen.filter((p) => p.phase === "uploading").map((p) => p.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b)); // never goes backwards
    expect(seen.at(-1)).toEqual({ phase: "done", loaded: 10_000, total: 10_000 });
  });

  test("retries a failed chunk after asking the server where it is", async () => {
    const content = bytes(9000);
    const server = new FakeServer();
    server.faults = [() => undefined, () => { throw new ApiError(0, "network_error", "offline"); }];
    const result = await resumableUpload(blobFile(content), target, server, { chunkSize: 4000, sleep: noSleep });
    expect(server.sends).toEqual([0, 4000, 4000, 8000]);
    expect(result.sha256).toBe(nodeSha(content));
  });

  test("a chunk that arrived but whose answer was lost is not sent twice", async () => {
    const content = bytes(9000);
    const server = new FakeServer();
    server.faults = [
      (id, _offset, chunk) => {
        server.data.get(id)!.push(...chunk); // stored…
        throw new ApiError(502, "http_error", "…but the answer was lost");
      },
    ];
    const result = await resumableUpload(blobFile(content), target, server, { chunkSize: 4000, sleep: noSleep });
    expect(server.sends).toEqual([0, 4000, 8000]);
    expect(result.sha256).toBe(nodeSha(content));
  });

  test("resumes a remembered upload after a reload, hashing what is already there", async () => {
    const content = bytes(12_000);
    const file = blobFile(content);
    const server = new FakeServer();
    const store = memoryStore();
    server.faults = [() => undefined, () => undefined, () => { throw new ApiError(503, "unavailable", "down"); }];
    await expect(resumableUpload(file, target, server, { chunkSize: 4000, store, retries: 0, sleep: noSleep })).rejects.toThrow("down");
    expect(store.get(resumeKey(target, file))).toBe("u1");
    expect(await server.offset("u1")).toBe(8000);

    server.sends = [];
    const result = await resumableUpload(file, target, server, { chunkSize: 4000, store, sleep: noSleep });
    expect(server.created).toBe(1); // the same upload, continued
    expect(server.sends).toEqual([8000]);
    expect(result.sha256).toBe(nodeSha(content));
    expect(store.get(resumeKey(target, file))).toBeNull();
  });

  test("starts again when the remembered upload expired", async () => {
    const content = bytes(5000);
    const file = blobFile(content);
    const server = new FakeServer();
    const store = memoryStore();
    store.set(resumeKey(target, file), "gone");
    const result = await resumableUpload(file, target, server, { chunkSize: 4000, store, sleep: noSleep });
    expect(server.created).toBe(1);
    expect(result.sha256).toBe(nodeSha(content));
  });

  test("a refusal (4xx) is not retried", async () => {
    const server = new FakeServer();
    server.faults = [() => { throw new ApiError(413, "too_large", "too large"); }];
    await expect(resumableUpload(blobFile(bytes(5000)), target, server, { chunkSize: 4000, sleep: noSleep })).rejects.toThrow("too large");
    expect(server.sends).toEqual([0]);
  });

  test("gives up after the retries", async () => {
    const server = new FakeServer();
    const fail = () => { throw new ApiError(0, "network_error", "offline"); };
    server.faults = [fail, fail, fail];
    await expect(resumableUpload(blobFile(bytes(5000)), target, server, { chunkSize: 4000, retries: 2, sleep: noSleep })).rejects.toThrow("offline");
    expect(server.sends).toEqual([0, 0, 0]);
  });

  test("an empty file completes at once", async () => {
    const server = new FakeServer();
    const result = await resumableUpload(blobFile(new Uint8Array()), target, server, { sleep: noSleep });
    expect(result.sha256).toBe(nodeSha(new Uint8Array()));
    expect(server.sends).toEqual([]);
  });
});
