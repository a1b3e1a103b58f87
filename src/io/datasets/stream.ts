// Image sets as evaluation reads them: images in label order served as uint8 batches, either from memory (a small
// set, or an idx data set) or streamed from an ImageFolder of any size. Streaming reads files on the main thread
// (hashing them for the record as loadImageFolder does) and decodes + transforms them on a pool of worker threads
// (decode-worker.ts), so at most a few batches of pixels are held whatever the set size.
//
// Opening a folder checks every image once before any training (decodes it on the pool): an unreadable file stops
// there with its name, or with `skipCorrupt` is left out and counted in source.skipped. A set whose transformed
// pixels fit within `memoryBudget` is kept in memory from that pass; a larger one is decoded again batch by batch.
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { relative } from "node:path";
import { Worker } from "node:worker_threads";
import { InputError } from "../../errors.js";
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { readLimits } from "../limits.js";
import type { ImageTransform } from "../resample.js";
import { describeTransform, transformSize } from "../resample.js";
import { type Dataset, type DatasetSource, labelsTensor } from "./dataset.js";
import type { DecodeJob, DecodeReply } from "./decode-worker.js";
import { hashEntry, listImageFolder, readImageFile } from "./imagefolder.js";
import { randomPerClassIndices } from "./split.js";

/** A labelled image set as training and testing read it. */
export interface ImageSet {
  labels: Int32Array;
  classes: string[];
  source: DatasetSource;
  /** [C, H, W] of every image. */
  shape: [number, number, number];
  /** What was done to the images read (e.g. "Resize(256, bilinear as PIL) -> CenterCrop(224)"), for the record. */
  transform: string;
  /** uint8 [B, C, H, W]: the images at `indices`, in that order. */
  images(indices: readonly number[]): Promise<Tensor>;
  /** Frees the images (memory) or stops the decode workers (streaming). */
  close(): Promise<void>;
}

/** An in-memory data set as an ImageSet (its image tensor is shared, and freed by close). */
export function memoryImageSet(ds: Dataset, transform = "none"): ImageSet {
  const [, c, h, w] = ds.images.shape;
  return {
    transform,
    labels: ds.labels,
    classes: ds.classes,
    source: ds.source,
    shape: [c, h, w],
    images: async (indices) => torch.tidy(() => torch.indexSelect(ds.images, 0, labelsTensor(indices))),
    close: async () => ds.images.dispose(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Decode pool
// ---------------------------------------------------------------------------------------------------------------

type Pending = { resolve: (chw: Uint8Array) => void; reject: (e: Error) => void };

/**
 * A fixed pool of decode workers with a job queue. A worker that dies takes the pool with it (every pending and later
 * job fails): workers are never restarted.
 */
export class DecodePool {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: DecodeJob[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly busy = new Map<Worker, number>();
  private nextId = 0;
  private broken: Error | null = null;

  constructor(readonly size = Math.max(1, availableParallelism() - 1)) {
    this.workers = Array.from({ length: size }, () => {
      const w = new Worker(new URL("./decode-worker.js", import.meta.url));
      w.unref();
      w.on("message", (r: DecodeReply) => this.reply(w, r));
      w.on("error", (e) => this.fail(new Error(`image decode worker failed: ${e.message}`)));
      w.on("exit", (code) => code !== 0 && this.fail(new Error(`image decode worker exited with code ${code}`)));
      return w;
    });
    this.idle = this.workers.slice();
  }

  /** Decodes (and transforms) one file's bytes; the bytes are handed over to the worker. */
  decode(bytes: Uint8Array, source: string, channels: 1 | 3, transform: ImageTransform | null): Promise<Uint8Array> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const p = new Promise<Uint8Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ id, bytes, source, channels, transform, maxPixels: readLimits().maxImagePixels });
    this.pump();
    return p;
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job.id);
      // Transferring hands over the whole ArrayBuffer: only when the bytes are all of it (else they are copied).
      const whole = job.bytes.byteOffset === 0 && job.bytes.byteLength === job.bytes.buffer.byteLength;
      w.postMessage(job, whole ? [job.bytes.buffer as ArrayBuffer] : []);
    }
  }

  private reply(w: Worker, r: DecodeReply): void {
    this.busy.delete(w);
    this.idle.push(w);
    const p = this.pending.get(r.id);
    this.pending.delete(r.id);
    if ("chw" in r) p?.resolve(r.chw);
    else p?.reject(r.inputError ? new InputError(r.error) : new Error(r.error));
    this.pump();
  }

  private fail(e: Error): void {
    this.broken ??= e;
    for (const p of this.pending.values()) p.reject(this.broken);
    this.pending.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.fail(new Error("the decode pool is closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ImageFolder sets
// ---------------------------------------------------------------------------------------------------------------

export interface FolderSetOptions {
  channels: 1 | 3;
  transform: ImageTransform;
  /** Class order (see ImageFolderOptions). */
  classes?: readonly string[];
  classFile?: string;
  /** Only a seeded stratified subset of this many images per class (chosen from the file list, before reading). */
  perClass?: { count: number; seed: number };
  /** Leave unreadable images out (counted in source.skipped) instead of stopping at the first. */
  skipCorrupt?: boolean;
  /** Keep the transformed set in memory when it takes at most this many bytes (default 512 MiB). */
  memoryBudget?: number;
  /** Decode workers (default: the CPU count less one). */
  workers?: number;
  /** Files read so far, for progress. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_MEMORY_BUDGET = 512 * 2 ** 20;
/** Decodes in flight per worker while checking a folder: keeps every worker busy and the bytes held bounded. */
const IN_FLIGHT_PER_WORKER = 4;

/** Opens an ImageFolder as an ImageSet: lists it, checks (and hashes) every image once, then serves batches. */
export async function openImageFolderSet(root: string, options: FolderSetOptions): Promise<ImageSet> {
  const listing = listImageFolder(root, options);
  let files = listing.files;
  let labels = listing.labels;
  if (options.perClass) {
    const keep = randomPerClassIndices(
      { labels: Int32Array.from(labels), classes: listing.classes },
      options.perClass.count,
      options.perClass.seed,
    );
    files = keep.map((i) => listing.files[i]);
    labels = keep.map((i) => listing.labels[i]);
  }
  const [h, w] = transformSize(options.transform);
  const imageBytes = options.channels * h * w;
  const inMemory = files.length * imageBytes <= (options.memoryBudget ?? DEFAULT_MEMORY_BUDGET);
  const pool = new DecodePool(options.workers);
  const window = new Set<Promise<void>>();
  try {
    const hash = createHash("sha256");
    const held = inMemory ? new Uint8Array(files.length * imageBytes) : null;
    const ok = new Uint8Array(files.length);
    const skipped: { file: string; error: string }[] = [];
    for (let i = 0; i < files.length; i++) {
      const bytes = readImageFile(files[i]);
      hashEntry(hash, root, files[i], bytes);
      const job = pool
        .decode(bytes, files[i], options.channels, held ? options.transform : null)
        .then((chw) => {
          held?.set(chw, i * imageBytes);
          ok[i] = 1;
        })
        .catch((e: Error) => {
          if (!(e instanceof InputError)) throw e;
          if (!options.skipCorrupt)
            throw new InputError(
              `${e.message} (an unreadable image stops the run; --skip-corrupt leaves such images out and counts them)`,
            );
          skipped.push({ file: relative(root, files[i]), error: e.message });
        })
        .finally(() => window.delete(job));
      window.add(job);
      if (window.size >= pool.size * IN_FLIGHT_PER_WORKER) await Promise.race(window);
      options.onProgress?.(i + 1, files.length);
    }
    await Promise.all(window);
    const kept = [...ok.keys()].filter((i) => ok[i]);
    if (kept.length === 0) throw new InputError(`${root}: no readable images`);
    const source: DatasetSource = {
      format: "image-folder",
      path: root,
      fileCount: kept.length,
      sha256: hash.digest("hex"),
      classOrder: listing.order,
      ...(skipped.length
        ? { skipped: { count: skipped.length, files: skipped.sort((a, b) => (a.file < b.file ? -1 : 1)) } }
        : {}),
    };
    const set = {
      labels: Int32Array.from(kept, (i) => labels[i]),
      classes: listing.classes,
      source,
      shape: [options.channels, h, w] as [number, number, number],
      transform: describeTransform(options.transform),
    };
    if (held) {
      await pool.close();
      const all = torch.fromArray(held, [files.length, options.channels, h, w]);
      const images =
        kept.length === files.length ? all : torch.tidy(() => torch.indexSelect(all, 0, labelsTensor(kept)));
      if (images !== all) all.dispose();
      return memoryImageSet({ ...set, images }, set.transform);
    }
    const keptFiles = kept.map((i) => files[i]);
    return {
      ...set,
      images: async (indices) => {
        const parts = await Promise.all(
          indices.map((i) =>
            pool.decode(readImageFile(keptFiles[i]), keptFiles[i], options.channels, options.transform),
          ),
        );
        const out = new Uint8Array(indices.length * imageBytes);
        parts.forEach((p, k) => out.set(p, k * imageBytes));
        return torch.fromArray(out, [indices.length, options.channels, h, w]);
      },
      close: () => pool.close(),
    };
  } catch (e) {
    // The decodes still in flight fail when the pool closes; the first error is the one to report.
    for (const job of window) job.catch(() => undefined);
    await pool.close();
    throw e;
  }
}
