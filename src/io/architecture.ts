// Recognises a checkpoint's architecture from its keys and shapes alone (no tensor data): DiT (official or diffusers
// naming), AutoencoderKL (diffusers or CompVis/LDM naming), torchvision ResNets, MobileNetV2 and EfficientNets, IDC's
// ResNet-AP and the dataset-distillation ConvNet-D.
// `inspect` prints the guess; commands that expect one family use requireArchitecture to reject the wrong file early
// with a message that says what the file is. A file of a recognised family whose weights contradict each other (a
// Minimax DiT's gammas in the wrong blocks) is recognised with a `problem`, which requireArchitecture refuses.
import { InputError } from "../errors.js";
import { DIT_SIZES, gammaKeyBlock, gammaKeys, minimaxGammaBlocks } from "./dit-layout.js";

export type Family = "dit" | "autoencoder-kl" | "resnet" | "resnetap" | "convnet" | "mobilenet_v2" | "efficientnet";
export type ConfigValue = number | string | boolean | number[] | null;

export interface ArchitectureGuess {
  family: Family;
  /** "DiT-XL/2", "AutoencoderKL (Stable Diffusion VAE)", "ResNet-50", "ConvNet-3", ... */
  name: string;
  /** Key naming scheme: "official", "diffusers", "ldm", "torchvision", "idc", "dc". */
  naming: string;
  /** What the weights say about the configuration (null where the weights do not tell). */
  config: Record<string, ConfigValue>;
  /** Why the weights cannot form a model of this family although they look like one. */
  problem?: string;
}

export type ShapeMap = ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>;

export const FAMILY_NAMES: Record<Family, string> = {
  dit: "DiT",
  "autoencoder-kl": "AutoencoderKL",
  resnet: "ResNet",
  resnetap: "ResNet-AP",
  convnet: "ConvNet",
  mobilenet_v2: "MobileNetV2",
  efficientnet: "EfficientNet",
};

/** The architecture the keys and shapes match, or null when none does. */
export function guessArchitecture(shapes: ShapeMap): ArchitectureGuess | null {
  const m =
    shapes instanceof Map ? (shapes as ReadonlyMap<string, readonly number[]>) : new Map(Object.entries(shapes));
  for (const guess of [
    ditOfficial,
    ditDiffusers,
    autoencoderKL,
    resnet,
    resnetAP,
    mobilenetV2,
    efficientNet,
    convnet,
  ]) {
    const g = guess(m);
    if (g) return g;
  }
  return null;
}

export class ArchitectureError extends InputError {}

/** The guess, when it is of `family`; otherwise an error naming what the checkpoint looks like. */
export function requireArchitecture(shapes: ShapeMap, family: Family, source: string): ArchitectureGuess {
  const g = guessArchitecture(shapes);
  if (g?.family === family && g.problem) throw new ArchitectureError(`${source}: ${g.problem}`);
  if (g?.family === family) return g;
  const keys = [...(shapes instanceof Map ? shapes.keys() : Object.keys(shapes))];
  const what = g
    ? `it holds ${g.name} weights`
    : `its keys match no known architecture (keys: ${keys.slice(0, 4).join(", ")}${keys.length > 4 ? ", ..." : ""})`;
  throw new ArchitectureError(`${source}: expected a ${FAMILY_NAMES[family]} checkpoint, but ${what}`);
}

// ---------------------------------------------------------------------------------------------------------------

type Shapes = ReadonlyMap<string, readonly number[]>;

/** How many consecutive indices i from 0 have `pattern(i)` as a key. */
function countIndexed(m: Shapes, pattern: (i: number) => string): number {
  let n = 0;
  while (m.has(pattern(n))) n++;
  return n;
}

const dim = (m: Shapes, key: string, d: number): number | null => m.get(key)?.[d] ?? null;

function ditName(depth: number, hidden: number, patch: number): { name: string; heads: number | null } {
  const c = Object.entries(DIT_SIZES).find(([, s]) => s.depth === depth && s.hiddenSize === hidden);
  return c
    ? { name: `DiT-${c[0]}/${patch}`, heads: c[1].numHeads }
    : { name: `DiT (depth ${depth}, hidden ${hidden}, patch ${patch})`, heads: null };
}

/** Config shared by both DiT namings: patch embedding, label table and final projection. */
function ditConfig(
  m: Shapes,
  depth: number,
  patchKey: string,
  labelKey: string,
  outKey: string,
): ArchitectureGuess["config"] & { name: string } {
  const [hidden, inChannels, patch] = m.get(patchKey)!;
  const outChannels = (dim(m, outKey, 0) ?? 0) / (patch * patch);
  const rows = dim(m, labelKey, 0);
  const { name, heads } = ditName(depth, hidden, patch);
  return {
    name,
    depth,
    hidden,
    heads,
    patch,
    inChannels,
    learnSigma: outChannels === 2 * inChannels,
    // The label table has one extra row for the null class (classifier-free guidance).
    numClasses: rows === null ? 0 : rows - 1,
  };
}

function ditOfficial(m: Shapes): ArchitectureGuess | null {
  if (
    m.get("x_embedder.proj.weight")?.length !== 4 ||
    !m.has("blocks.0.attn.qkv.weight") ||
    !m.has("final_layer.linear.weight")
  )
    return null;
  const depth = countIndexed(m, (i) => `blocks.${i}.attn.qkv.weight`);
  const { name, ...config } = ditConfig(
    m,
    depth,
    "x_embedder.proj.weight",
    "y_embedder.embedding_table.weight",
    "final_layer.linear.weight",
  );
  const tokens = dim(m, "pos_embed", 1);
  const grid = tokens === null ? null : Math.round(Math.sqrt(tokens));
  const { gammaBlocks, problem } = ditGammas(m, depth, config.hidden as number);
  return {
    family: "dit",
    name: gammaBlocks ? `${name} with Minimax gammas` : name,
    naming: "official",
    config: { ...config, latentSize: grid === null ? null : grid * (config.patch as number), gammaBlocks },
    ...(problem ? { problem } : {}),
  };
}

/**
 * The DiffFit gammas of an official-naming DiT: none, or the Minimax layout (all four gammas, of the right sizes, in
 * each of the first depth/2 blocks and in no other).
 */
function ditGammas(m: Shapes, depth: number, hidden: number): { gammaBlocks: number; problem?: string } {
  const present = [...m.keys()].filter((k) => gammaKeyBlock(k) !== null);
  if (!present.length) return { gammaBlocks: 0 };
  const n = minimaxGammaBlocks(depth);
  const expected = Array.from({ length: n }, (_, i) => gammaKeys(i, hidden)).flat();
  const beyond = present.filter((k) => gammaKeyBlock(k)! >= n);
  const missing = expected.filter(([k]) => !m.has(k)).map(([k]) => k);
  const wrong = expected
    .filter(([k, s]) => m.has(k) && m.get(k)!.join() !== s.join())
    .map(([k, s]) => `${k} is [${m.get(k)}], expected [${s}]`);
  const parts: string[] = [];
  if (wrong.length) parts.push(listed(wrong));
  if (beyond.length) parts.push(`gammas beyond the first half: ${listed(beyond)}`);
  if (missing.length) parts.push(`missing ${listed(missing)}`);
  if (!parts.length) return { gammaBlocks: n };
  const where = n ? `blocks 0-${n - 1}` : "no block";
  return {
    gammaBlocks: n,
    problem: `Minimax gammas do not match the DiT (depth ${depth}, hidden ${hidden}: expected in ${where}): ${parts.join("; ")}`,
  };
}

/** The first few items, and how many there are when more. */
const listed = (items: string[], show = 3) =>
  items.slice(0, show).join(", ") + (items.length > show ? `, ... (${items.length} in all)` : "");

function ditDiffusers(m: Shapes): ArchitectureGuess | null {
  if (
    m.get("pos_embed.proj.weight")?.length !== 4 ||
    !m.has("transformer_blocks.0.attn1.to_q.weight") ||
    !m.has("proj_out_2.weight")
  )
    return null;
  const depth = countIndexed(m, (i) => `transformer_blocks.${i}.attn1.to_q.weight`);
  const { name, ...config } = ditConfig(
    m,
    depth,
    "pos_embed.proj.weight",
    "transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight",
    "proj_out_2.weight",
  );
  // diffusers does not save the position embedding, so the sample size is not in the weights.
  return { family: "dit", name, naming: "diffusers", config: { ...config, latentSize: null, gammaBlocks: 0 } };
}

function autoencoderKL(m: Shapes): ArchitectureGuess | null {
  if (!m.has("encoder.conv_in.weight") || !m.has("decoder.conv_in.weight") || !m.has("decoder.conv_out.weight"))
    return null;
  const ldm = m.has("encoder.down.0.block.0.conv1.weight");
  if (!ldm && !m.has("encoder.down_blocks.0.resnets.0.conv1.weight")) return null;
  const resnetKey = (i: number, j: number) =>
    ldm ? `encoder.down.${i}.block.${j}.conv1.weight` : `encoder.down_blocks.${i}.resnets.${j}.conv1.weight`;
  const levels = countIndexed(m, (i) => resnetKey(i, 0));
  const blockOutChannels = Array.from({ length: levels }, (_, i) => m.get(resnetKey(i, 0))![0]);
  const layersPerBlock = countIndexed(m, (j) => resnetKey(0, j));
  const attn = ldm ? "encoder.mid.attn_1" : "encoder.mid_block.attentions.0";
  const midAttention = ldm
    ? m.has(`${attn}.q.weight`)
      ? "q/k/v"
      : "none"
    : m.has(`${attn}.to_q.weight`)
      ? "to_q/to_k/to_v"
      : m.has(`${attn}.query.weight`)
        ? "query/key/value"
        : "none";
  const config = {
    blockOutChannels,
    layersPerBlock,
    inChannels: dim(m, "encoder.conv_in.weight", 1),
    outChannels: dim(m, "decoder.conv_out.weight", 0),
    latentChannels: dim(m, "decoder.conv_in.weight", 1),
    downsample: 2 ** (levels - 1),
    midAttention,
  };
  const sd =
    blockOutChannels.join() === "128,256,512,512" &&
    layersPerBlock === 2 &&
    config.latentChannels === 4 &&
    config.inChannels === 3;
  return {
    family: "autoencoder-kl",
    name: sd ? "AutoencoderKL (Stable Diffusion VAE)" : "AutoencoderKL",
    naming: ldm ? "ldm" : "diffusers",
    config,
  };
}

/** "batch" when a norm layer keeps running statistics, "instance" when it has only affine weights, else "none". */
const normAt = (m: Shapes, prefix: string) =>
  m.has(`${prefix}.running_mean`) ? "batch" : m.has(`${prefix}.weight`) ? "instance" : "none";

function resnet(m: Shapes): ArchitectureGuess | null {
  if (m.get("conv1.weight")?.length !== 4 || !m.has("layer1.0.conv1.weight") || !m.has("fc.weight")) return null;
  const blocks = [1, 2, 3, 4].map((l) => countIndexed(m, (i) => `layer${l}.${i}.conv1.weight`));
  const bottleneck = m.has("layer1.0.conv3.weight");
  const depth = 2 + (bottleneck ? 3 : 2) * blocks.reduce((a, b) => a + b, 0);
  const [, inChannels, stemKernel] = m.get("conv1.weight")!;
  const norm = normAt(m, "bn1");
  return {
    family: "resnet",
    name: `ResNet-${depth}`,
    naming: "torchvision",
    config: {
      depth,
      blocks,
      bottleneck,
      numClasses: dim(m, "fc.weight", 0),
      inChannels,
      stemKernel,
      width: dim(m, "conv1.weight", 0),
      norm,
    },
  };
}

function resnetAP(m: Shapes): ArchitectureGuess | null {
  if (m.get("layer0.conv1.weight")?.length !== 4 || !m.has("layer1.0.conv1.weight") || !m.has("fc.weight")) return null;
  const blocks = [1, 2, 3, 4].map((l) => countIndexed(m, (i) => `layer${l}.${i}.conv1.weight`));
  const depth = 2 + 2 * blocks.reduce((a, b) => a + b, 0);
  const [width, inChannels, stemKernel] = m.get("layer0.conv1.weight")!;
  return {
    family: "resnetap",
    name: `ResNet-AP-${depth}`,
    naming: "idc",
    config: {
      depth,
      blocks,
      numClasses: dim(m, "fc.weight", 0),
      inChannels,
      stemKernel,
      width,
      norm: normAt(m, "layer0.bn1"),
    },
  };
}

/** Entries of torchvision's `features` Sequential: features.0 (stem) to the last index that holds weights. */
const featureCount = (m: Shapes) => {
  let n = 0;
  for (const k of m.keys()) {
    const i = /^features\.(\d+)\./.exec(k);
    if (i) n = Math.max(n, Number(i[1]) + 1);
  }
  return n;
};

function mobilenetV2(m: Shapes): ArchitectureGuess | null {
  if (
    m.get("features.0.0.weight")?.length !== 4 ||
    !m.has("features.1.conv.0.0.weight") ||
    m.get("classifier.1.weight")?.length !== 2
  )
    return null;
  const [numClasses, lastChannels] = m.get("classifier.1.weight")!;
  const [stemChannels, inChannels] = m.get("features.0.0.weight")!;
  const features = featureCount(m);
  // width multiplier 1.0: a 32-channel stem, 17 inverted residual blocks, 1280 features
  const standard = stemChannels === 32 && lastChannels === 1280 && features === 19;
  return {
    family: "mobilenet_v2",
    name: standard
      ? "MobileNetV2"
      : `MobileNetV2 (stem ${stemChannels}, ${features - 2} blocks, ${lastChannels} features)`,
    naming: "torchvision",
    config: {
      numClasses,
      inChannels,
      stemChannels,
      blocks: features - 2,
      lastChannels,
      widthMultiplier: standard ? 1 : null,
    },
  };
}

/** torchvision's EfficientNet-B0 stages: blocks per stage (B1-B7 scale these, and the widths, up). */
const EFFICIENTNET_B0_BLOCKS = [1, 2, 2, 3, 3, 4, 1];

function efficientNet(m: Shapes): ArchitectureGuess | null {
  if (
    m.get("features.0.0.weight")?.length !== 4 ||
    !m.has("features.1.0.block.0.0.weight") ||
    m.get("classifier.1.weight")?.length !== 2
  )
    return null;
  const [numClasses, lastChannels] = m.get("classifier.1.weight")!;
  const [stemChannels, inChannels] = m.get("features.0.0.weight")!;
  const blocks = Array.from({ length: featureCount(m) - 2 }, (_, s) =>
    countIndexed(m, (i) => `features.${s + 1}.${i}.block.0.0.weight`),
  );
  const b0 = stemChannels === 32 && lastChannels === 1280 && blocks.join() === EFFICIENTNET_B0_BLOCKS.join();
  return {
    family: "efficientnet",
    name: b0 ? "EfficientNet-B0" : `EfficientNet (stem ${stemChannels}, blocks [${blocks}], ${lastChannels} features)`,
    naming: "torchvision",
    config: { variant: b0 ? "b0" : null, numClasses, inChannels, stemChannels, blocks, lastChannels },
  };
}

function convnet(m: Shapes): ArchitectureGuess | null {
  if (m.get("features.0.weight")?.length !== 4 || m.get("classifier.weight")?.length !== 2) return null;
  const convs = [...m.entries()]
    .filter(([k, s]) => /^features\.\d+\.weight$/.test(k) && s.length === 4)
    .map(([k, s]) => [Number(k.split(".")[1]), s] as const)
    .sort((a, b) => a[0] - b[0]);
  const depth = convs.length;
  const [width, inChannels] = convs[0][1];
  // The layer after the first conv is its norm, if any: BatchNorm keeps running statistics, instance norm
  // (GroupNorm with one group per channel) only an affine weight.
  const norm = m.has("features.1.running_mean")
    ? "batch"
    : m.get("features.1.weight")?.length === 1
      ? "instance"
      : "none";
  const [numClasses, features] = m.get("classifier.weight")!;
  // Each layer halves the resolution (2x2 average pooling), so the flattened feature size gives the input size.
  const side = Math.sqrt(features / width);
  return {
    family: "convnet",
    name: `ConvNet-${depth}`,
    naming: "dc",
    config: {
      depth,
      width,
      inChannels,
      numClasses,
      norm,
      inputSize: Number.isInteger(side) ? side * 2 ** depth : null,
    },
  };
}
