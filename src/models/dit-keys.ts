// DiT checkpoint names: the official ones (facebookresearch/DiT, what dit.ts uses) and diffusers' Transformer2DModel
// (norm_type "ada_norm_zero"; also DiTTransformer2DModel). Facts, from diffusers' scripts/convert_dit_to_diffusers.py
// and its model code:
//  - every weight is copied unchanged except attn.qkv, which diffusers splits along dim 0 into to_q, to_k, to_v;
//  - the chunk orders agree: norm1.linear gives (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp) and
//    proj_out_1 gives (shift, scale), as adaLN_modulation.1 in the official blocks and final layer;
//  - the timestep and label embedders live in every block (norm1.emb), copies of the official single ones;
//  - pos_embed is not in diffusers' state dict (a non-persistent buffer), so a converted map may lack it.
// (diffusers' model computes the timestep features with a shift of one in the frequency exponent, i/127 instead of
// i/128; the weights are the official ones and dit.ts keeps the official formula.)
import { cat, equal, type Tensor } from "../torch/index.js";

/** Official module path -> diffusers module path, for keys outside the blocks. */
const TOP_LEVEL: readonly [string, string][] = [
  ["x_embedder.proj", "pos_embed.proj"],
  ["final_layer.adaLN_modulation.1", "proj_out_1"],
  ["final_layer.linear", "proj_out_2"],
];

/** Official blocks.{i}.<module> -> diffusers transformer_blocks.{i}.<module>. */
const IN_BLOCK: readonly [string, string][] = [
  ["attn.proj", "attn1.to_out.0"],
  ["mlp.fc1", "ff.net.0.proj"],
  ["mlp.fc2", "ff.net.2"],
  ["adaLN_modulation.1", "norm1.linear"],
];

/** Official shared embedders -> their per-block copies in diffusers (transformer_blocks.{i}.<module>). */
const SHARED: readonly [string, string][] = [
  ["t_embedder.mlp.0", "norm1.emb.timestep_embedder.linear_1"],
  ["t_embedder.mlp.2", "norm1.emb.timestep_embedder.linear_2"],
  ["y_embedder.embedding_table", "norm1.emb.class_embedder.embedding_table"],
];

/** blocks.{i}.attn.qkv = cat([to_q, to_k, to_v], dim 0). */
const QKV = { official: "attn.qkv", diffusers: ["attn1.to_q", "attn1.to_k", "attn1.to_v"] } as const;

/** diffusers' PatchEmbed buffer, when a checkpoint does carry it. */
const POS_EMBED: readonly [string, string] = ["pos_embed", "pos_embed.pos_embed"];

/** True when the keys are diffusers' DiT names (transformer_blocks.*, proj_out_1/2). */
export function isDiffusersNaming(sd: Map<string, Tensor>): boolean {
  for (const k of sd.keys()) if (k.startsWith("transformer_blocks.") || k.startsWith("proj_out_1.")) return true;
  return false;
}

export interface FromDiffusersOptions {
  /** Called when a block's embedder copy differs from block 0's (default: process.emitWarning). */
  warn?: (message: string) => void;
}

/** Splits "a.b.weight" into the module path and the parameter name when the path is `module`. */
function paramOf(key: string, module: string): string | null {
  return key.startsWith(`${module}.`) && !key.slice(module.length + 1).includes(".")
    ? key.slice(module.length + 1)
    : null;
}

/**
 * Renames a diffusers DiT state dict to the official names. The result holds the input's tensors (not copies) except
 * the concatenated qkv weights, which are new. Keys it does not know pass through unchanged, so loading reports
 * them. The embedders are taken from block 0; a block whose copy differs is reported through `warn`, because the
 * official architecture has one timestep and one label embedder.
 */
export function fromDiffusers(sd: Map<string, Tensor>, opts: FromDiffusersOptions = {}): Map<string, Tensor> {
  const warn = opts.warn ?? ((m: string) => process.emitWarning(m, "DiTCheckpointWarning"));
  const out = new Map<string, Tensor>();
  const qkv = new Map<string, [string, Tensor][]>();
  const differing: string[] = [];
  const rename = (
    key: string,
    table: readonly [string, string][],
    prefixOld: string,
    prefixNew: string,
  ): string | null => {
    for (const [official, diffusers] of table) {
      const p = paramOf(key, prefixNew + diffusers);
      if (p !== null) return `${prefixOld}${official}.${p}`;
    }
    return null;
  };
  for (const [key, t] of sd) {
    if (key === POS_EMBED[1]) {
      out.set(POS_EMBED[0], t);
      continue;
    }
    const m = /^transformer_blocks\.(\d+)\./.exec(key);
    if (!m) {
      out.set(rename(key, TOP_LEVEL, "", "") ?? key, t);
      continue;
    }
    const i = Number(m[1]);
    const inBlock = rename(key, IN_BLOCK, `blocks.${i}.`, m[0]);
    if (inBlock) {
      out.set(inBlock, t);
      continue;
    }
    const shared = rename(key, SHARED, "", m[0]);
    if (shared) {
      const first = sd.get(key.replace(m[0], "transformer_blocks.0."));
      if (i === 0 || !first) out.set(shared, t);
      else if (!sameValues(first, t)) differing.push(key);
      continue;
    }
    const part = QKV.diffusers.findIndex((d) => paramOf(key, m[0] + d) !== null);
    if (part >= 0) {
      const target = `blocks.${i}.${QKV.official}.${paramOf(key, m[0] + QKV.diffusers[part])}`;
      const parts = qkv.get(target) ?? [];
      parts[part] = [key, t];
      qkv.set(target, parts);
      continue;
    }
    out.set(key, t);
  }
  for (const [target, parts] of qkv) {
    const complete = parts.length === 3 && parts.every(Boolean);
    // An incomplete split keeps its diffusers names: loading then reports them and the missing qkv key.
    if (complete)
      out.set(
        target,
        cat(
          parts.map(([, t]) => t),
          0,
        ),
      );
    else for (const [key, t] of parts.filter(Boolean)) out.set(key, t);
  }
  if (differing.length) {
    warn(
      `diffusers DiT checkpoint: ${differing.length} per-block embedder copies differ from block 0's (${differing.slice(0, 3).join(", ")}` +
        `${differing.length > 3 ? ", ..." : ""}); the DiT architecture shares one, block 0's is used`,
    );
  }
  return out;
}

function sameValues(a: Tensor, b: Tensor): boolean {
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]) && equal(a, b)
  );
}
