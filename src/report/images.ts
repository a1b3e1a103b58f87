// The report's images: the distilled PNGs, the pre-refinement ones a run kept, and their amplified difference, either
// inlined into the HTML as data: URLs or written to a folder beside it (`<report>_files/`, as a browser's "save page"
// does), so that the report opens without network access and can be moved together with its folder.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { InputError } from "../errors.js";
import { decodePng, encodePng } from "../io/png.js";

export const IMAGE_MODES = ["auto", "inline", "beside"] as const;
export type ImageMode = (typeof IMAGE_MODES)[number];
/** In auto mode, images up to this many bytes are inlined (base64 adds a third: a report of about 11 MB at most). */
export const INLINE_LIMIT_BYTES = 8 * 2 ** 20;

/** |after - before| x amplify per sample, clamped to 255: refinement moves images too little to see at scale 1. */
export function amplifiedDifference(before: Uint8Array, after: Uint8Array, amplify: number, where: string): Uint8Array {
  const a = decodePng(before);
  const b = decodePng(after);
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels)
    throw new InputError(
      `${where}: the image before refinement is ${a.width}x${a.height}x${a.channels}, after it ${b.width}x${b.height}x${b.channels}`,
    );
  const data = new Uint8Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.round(Math.abs(b.data[i] - a.data[i]) * amplify));
  return encodePng({ ...a, data });
}

/** The folder beside a report that holds its images. */
export const filesDir = (htmlPath: string) =>
  join(dirname(htmlPath), `${basename(htmlPath).replace(/\.html?$/i, "")}_files`);

/** Collects images under relative names; `place` then decides where they go and gives each its URL in the page. */
export class ImageSet {
  private readonly images = new Map<string, Uint8Array>();

  /** Adds an image and returns the name `src` resolves. */
  add(name: string, bytes: Uint8Array): string {
    this.images.set(name, bytes);
    return name;
  }

  get bytes(): number {
    let n = 0;
    for (const b of this.images.values()) n += b.length;
    return n;
  }

  get count(): number {
    return this.images.size;
  }

  resolveMode(mode: ImageMode): "inline" | "beside" {
    return mode === "auto" ? (this.bytes <= INLINE_LIMIT_BYTES ? "inline" : "beside") : mode;
  }

  /** URL of an added image in the page: a data: URL, or a path relative to the report. */
  src(name: string, mode: "inline" | "beside", htmlPath: string): string {
    const bytes = this.images.get(name);
    if (!bytes) throw new Error(`image ${name} was not added`);
    if (mode === "inline") return `data:image/png;base64,${Buffer.from(bytes).toString("base64")}`;
    return [basename(filesDir(htmlPath)), ...name.split("/")].map(encodeURIComponent).join("/");
  }

  /**
   * For the beside mode: writes every image into a fresh folder and swaps it in for the old one, so that a failed
   * run leaves the previous report's folder whole. Inline mode removes a folder an earlier beside report left.
   */
  write(mode: "inline" | "beside", htmlPath: string): void {
    const dir = filesDir(htmlPath);
    if (mode === "inline") return void rmSync(dir, { recursive: true, force: true });
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    try {
      for (const [name, bytes] of this.images) {
        const p = join(tmp, name);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, bytes); // the whole folder is swapped in at the end
      }
      if (existsSync(dir)) rmSync(dir, { recursive: true });
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
}
