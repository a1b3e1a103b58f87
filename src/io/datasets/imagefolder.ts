// ImageFolder: root/<class>/<images> (PNG or JPEG, any depth below the class folder), as torchvision's ImageFolder.
// Differences, on purpose: folders and files whose names start with "." are skipped (no ".ipynb_checkpoints"
// class), and the class order can come from a list (see ImageFolderOptions) - an unsorted list such as an ImageNet
// subset file is where silently wrong labels usually come from, so the order used is recorded in source.classOrder.
// Bounded: symbolic links to folders are followed as torchvision does, but a link loop (ELOOP) or a link back to a
// folder being walked is an error, and a folder reached twice within a class is listed once; only regular files are
// read (a FIFO or a link to /dev/zero named *.png is refused, never opened for reading); a file larger than an image
// within the pixel limit can be is refused from its size; and the images together, as one tensor, stay within
// --max-tensor-bytes.
import { createHash, type Hash } from "node:crypto";
import { existsSync, readdirSync, statSync, type Stats } from "node:fs";
import { extname, join, relative } from "node:path";
import { InputError } from "../../errors.js";
import * as torch from "../../torch/index.js";
import { readRegularFile } from "../files.js";
import { convertChannels, decodeImage, imageToUint8Tensor, resizeImages } from "../image.js";
import { overLimit, readLimits } from "../limits.js";
import type { Dataset } from "./dataset.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];
/** A class-list file inside the root that, when present, fixes the class order (one name per line). */
export const CLASS_LIST_FILE = "classes.txt";

/** A name as a folder name: runs of characters outside [A-Za-z0-9._-] become "-". */
export const folderSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "-");

/**
 * Folder of a class in the output ImageFolder: the label zero-padded, then the id, so that sorting folders by name
 * (what ImageFolder readers do) gives the label order.
 */
export function classFolder(c: { readonly label: number; readonly id: string }, numClasses: number): string {
  const width = String(numClasses - 1).length;
  return `${String(c.label).padStart(width, "0")}_${c.id}`;
}

export interface ImageFolderOptions {
  /** 1 = grey, 3 = RGB (PIL convert semantics). Default: 1 when every image is grey (with or without alpha), else 3. */
  channels?: 1 | 3;
  /** Resize every image to size x size or [h, w] (bilinear, see resizeImages). Needed when image sizes differ. */
  size?: number | readonly [number, number];
  /** Low-pass filter when shrinking (default true, closer to PIL's resize used by torchvision pipelines). */
  antialias?: boolean;
  /** Class names in label order. Folders not listed are ignored. */
  classes?: readonly string[];
  /** A file with one class name per line, same meaning as `classes`. Default: <root>/classes.txt when it exists. */
  classFile?: string;
}

/** Reads a class-list file: one name per line, surrounding blanks trimmed, empty lines ignored, no duplicates. */
export function readClassFile(path: string): string[] {
  if (!existsSync(path)) throw new InputError(`${path}: class-list file not found`);
  // A regular file of sane size (a list of 21,843 ImageNet names is 200 KB); a FIFO here would block the read.
  const names = readRegularFile(path, 16 * 2 ** 20, "a class list is at most 16 MiB")
    .toString("utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  checkClassList(names, path);
  return names;
}

function checkClassList(names: readonly string[], where: string): void {
  if (names.length === 0) throw new InputError(`${where}: the class list is empty`);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new InputError(`${where}: class '${n}' is listed twice`);
    seen.add(n);
  }
}

/** Code-point order (as Python's sorted on str), via UTF-8 bytes. */
const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const visible = (name: string) => !name.startsWith(".");

/** stat() that follows links, with a link loop or a dangling link reported as the input error it is. */
function statFollow(p: string): Stats {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new InputError(`${p}: symbolic link loop (expected an image file or a folder)`);
    if (code === "ENOENT") throw new InputError(`${p}: symbolic link to nothing (expected an image file or a folder)`);
    throw e;
  }
}

/** Image files under dir (recursively), sorted by path; `seen` holds the folders already listed (device:inode). */
function listImages(dir: string, seen = new Set<string>(), onPath = new Set<string>()): string[] {
  const id = (st: Stats) => `${st.dev}:${st.ino}`;
  const here = id(statFollow(dir));
  if (onPath.has(here))
    throw new InputError(`${dir}: a symbolic link leads back to a folder that contains it (a folder cycle)`);
  if (seen.has(here)) return [];
  seen.add(here);
  onPath.add(here);
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => visible(e.name))
    .sort((a, b) => byCodePoint(a.name, b.name));
  for (const e of entries) {
    const p = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && statFollow(p).isDirectory());
    if (isDir) {
      for (const f of listImages(p, seen, onPath)) out.push(f);
    } else if (IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) out.push(p);
  }
  onPath.delete(here);
  return out;
}

/** The visible folders (or links to folders) directly in root, sorted: the candidate class folders. */
export function classFolders(root: string): string[] {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new InputError(`${root}: no such folder`);
  return readdirSync(root, { withFileTypes: true })
    .filter(
      (e) =>
        visible(e.name) && (e.isDirectory() || (e.isSymbolicLink() && statFollow(join(root, e.name)).isDirectory())),
    )
    .map((e) => e.name)
    .sort(byCodePoint);
}

/** Decides the classes (label order) and where that order came from. */
function resolveClasses(root: string, o: ImageFolderOptions): { classes: string[]; order: string } {
  const folders = classFolders(root);
  if (o.classes && o.classFile) throw new InputError("give the class list either as names or as a file, not both");
  const defaultFile = join(root, CLASS_LIST_FILE);
  let classes: string[];
  let order: string;
  if (o.classes) {
    classes = o.classes.slice();
    checkClassList(classes, "class list");
    order = "list";
  } else if (o.classFile || existsSync(defaultFile)) {
    order = o.classFile ?? defaultFile;
    classes = readClassFile(order);
  } else {
    if (folders.length === 0) throw new InputError(`${root}: no class folders (expected ${root}/<class>/<images>)`);
    return { classes: folders, order: "sorted folder names" };
  }
  const have = new Set(folders);
  const missing = classes.filter((c) => !have.has(c));
  if (missing.length > 0) {
    const shown = missing
      .slice(0, 5)
      .map((c) => `'${c}'`)
      .join(", ");
    throw new InputError(
      `${root}: no folder for ${missing.length} listed class(es): ${shown}${missing.length > 5 ? ", ..." : ""} (class list: ${order})`,
    );
  }
  return { classes, order };
}

/** An ImageFolder's classes in label order (its class-list file, else its sorted folder names), without listing images. */
export function imageFolderClasses(root: string): string[] {
  return resolveClasses(root, {}).classes;
}

/**
 * An image file's bytes: a regular file no larger than an image within the pixel limit can need (8 bytes a pixel,
 * 16-bit RGBA stored uncompressed, and room for metadata).
 */
export const readImageFile = (file: string) =>
  readRegularFile(file, 8 * readLimits().maxImagePixels + 2 ** 20, "--max-image-pixels");

/** One file's part of source.sha256: its path relative to the root, a NUL byte, its bytes. */
export const hashEntry = (hash: Hash, root: string, file: string, bytes: Uint8Array) =>
  hash.update(relative(root, file)).update("\0").update(bytes);

/** An ImageFolder's images in load order (class by class, paths sorted within a class) with their labels. */
export interface FolderListing {
  classes: string[];
  /** How the class order was decided (source.classOrder). */
  order: string;
  files: string[];
  labels: number[];
}

/** Lists an ImageFolder without reading its images; a class folder without images is an error. */
export function listImageFolder(
  root: string,
  options: Pick<ImageFolderOptions, "classes" | "classFile"> = {},
): FolderListing {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new InputError(`${root}: no such folder`);
  const { classes, order } = resolveClasses(root, options);
  const files: string[] = [];
  const labels: number[] = [];
  classes.forEach((cls, label) => {
    const found = listImages(join(root, cls));
    if (found.length === 0)
      throw new InputError(`${join(root, cls)}: class folder has no images (${IMAGE_EXTENSIONS.join(", ")})`);
    for (const f of found) {
      files.push(f);
      labels.push(label);
    }
  });
  return { classes, order, files, labels };
}

/**
 * The digest loadImageFolder records as source.sha256 (same files, same order), without decoding the images: what
 * tells whether an evaluation record trained on this folder.
 */
export function imageFolderDigest(
  root: string,
  options: Pick<ImageFolderOptions, "classes" | "classFile"> = {},
): string {
  const hash = createHash("sha256");
  for (const file of listImageFolder(root, options).files) hashEntry(hash, root, file, readImageFile(file));
  return hash.digest("hex");
}

/**
 * Loads every image into one [N, C, H, W] uint8 tensor, labels = class positions. source.sha256 hashes, for each
 * file in load order, its path relative to the root, a NUL byte and its bytes.
 */
export function loadImageFolder(root: string, options: ImageFolderOptions = {}): Dataset {
  const { classes, order, files, labels: fileLabels } = listImageFolder(root, options);
  const size =
    options.size === undefined
      ? undefined
      : typeof options.size === "number"
        ? ([options.size, options.size] as const)
        : options.size;
  if (size && !size.every((s) => Number.isInteger(s) && s > 0))
    throw new InputError(`image size must be positive integers, got ${size}`);
  if (size && size[0] * size[1] > readLimits().maxImagePixels)
    throw new InputError(
      `image size ${size.join("x")} is over the ${readLimits().maxImagePixels}-pixel limit (--max-image-pixels)`,
    );

  const hash = createHash("sha256");
  const { maxTensorBytes } = readLimits();
  // Each image as CHW bytes with its own channel count (1 or 3); the common count is known only at the end.
  const items: { chw: Uint8Array; channels: 1 | 3 }[] = [];
  const labels: number[] = [];
  let shape: { h: number; w: number; file: string } | undefined;
  // Bytes held so far (checked as they grow), then the images tensor itself (grey images among colour ones triple).
  let heldBytes = 0;
  files.forEach((file, i) => {
    const bytes = readImageFile(file);
    hashEntry(hash, root, file, bytes);
    const raw = decodeImage(bytes, file);
    const channels = options.channels ?? (raw.channels <= 2 ? 1 : 3);
    const img = convertChannels(raw, channels);
    let chw: Uint8Array;
    if (size) {
      chw = torch.tidy(() =>
        resizeImages(imageToUint8Tensor(img).unsqueeze(0), size, { antialias: options.antialias }).toBytes(),
      );
    } else {
      shape ??= { h: img.height, w: img.width, file };
      if (img.height !== shape.h || img.width !== shape.w)
        throw new InputError(
          `${file}: ${img.width}x${img.height} differs from ${shape.file} (${shape.w}x${shape.h}); give an image size to resize to`,
        );
      chw = torch.tidy(() => imageToUint8Tensor(img).toBytes());
    }
    heldBytes += chw.length;
    if (heldBytes > maxTensorBytes)
      throw new InputError(`${root}: ${overLimit(`the images up to ${file}`, heldBytes, maxTensorBytes)}`);
    items.push({ chw, channels });
    labels.push(fileLabels[i]);
  });

  const c = items.some((it) => it.channels === 3) ? 3 : 1;
  const [h, w] = size ?? [shape!.h, shape!.w];
  const plane = h * w;
  if (items.length * c * plane > maxTensorBytes)
    throw new InputError(
      `${root}: ${overLimit(`its ${items.length} images at ${c} channels`, items.length * c * plane, maxTensorBytes)}`,
    );
  const data = new Uint8Array(items.length * c * plane);
  items.forEach((it, i) => {
    // Grey images among colour ones are replicated, as PIL's convert('RGB').
    for (let ch = 0; ch < c; ch++) {
      const from = it.channels === 1 ? 0 : ch * plane;
      data.set(it.chw.subarray(from, from + plane), (i * c + ch) * plane);
    }
  });
  return {
    images: torch.fromArray(data, [items.length, c, h, w]),
    labels: Int32Array.from(labels),
    classes,
    source: {
      format: "image-folder",
      path: root,
      fileCount: items.length,
      sha256: hash.digest("hex"),
      classOrder: order,
    },
  };
}
