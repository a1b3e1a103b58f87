// A decode worker of the streaming loader (stream.ts): image bytes in, transformed CHW bytes out. It imports only
// plain-JavaScript modules, never the libtorch addon (a worker thread that loaded the addon aborts the process when
// it exits, so the pool neither loads it here nor restarts workers).
import { parentPort } from "node:worker_threads";
import { InputError } from "../../errors.js";
import { convertChannels, decodeImage } from "../decode.js";
import { applyTransform, type ImageTransform, toChw } from "../resample.js";

export interface DecodeJob {
  id: number;
  bytes: Uint8Array;
  /** Names the file in errors. */
  source: string;
  channels: 1 | 3;
  /** null: decode only (to check the file), return no pixels. */
  transform: ImageTransform | null;
  maxPixels: number;
}

export type DecodeReply = { id: number; chw: Uint8Array } | { id: number; error: string; inputError: boolean };

parentPort!.on("message", (job: DecodeJob) => {
  try {
    const img = convertChannels(decodeImage(job.bytes, job.source, { maxPixels: job.maxPixels }), job.channels);
    const chw = job.transform ? toChw(applyTransform(img, job.transform)) : new Uint8Array(0);
    parentPort!.postMessage({ id: job.id, chw } satisfies DecodeReply, [chw.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({
      id: job.id,
      error: (e as Error).message,
      inputError: e instanceof InputError,
    } satisfies DecodeReply);
  }
});
