// The three models of a distillation run, from cao2 model files (which describe themselves) or from the PyTorch
// world's checkpoints (official DiT .pt, diffusers/SD VAE safetensors, torchvision ResNet / MobileNetV2 /
// EfficientNet-B0 .pth, IDC's ResNet-AP, DD ConvNets), whose
// architecture is read off their keys and shapes. A file of the wrong kind is refused before any work starts.
import { existsSync, statSync } from "node:fs";
import { InputError } from "../errors.js";
import { requireArchitecture } from "../io/architecture.js";
import { loadStateDict, openCheckpoint } from "../io/checkpoint.js";
import { sha256File } from "../io/files.js";
import { type AutoencoderKL, type AutoencoderKLConfig, createAutoencoderKL } from "../models/autoencoder.js";
import { minimaxGammaBlocks } from "../io/dit-layout.js";
import { createDiT, DIT_DEFAULTS, type DiT, type DiTConfig } from "../models/dit.js";
import { buildClassifier, type Classifier, CLASSIFIER_KINDS, classifierSpecOf } from "../models/classifiers.js";
import { buildModel, fillFromFile, type Preprocess, readModelMetaOfKind } from "../models/saved.js";
import { tidy } from "../torch/index.js";

export const IMAGENET_PREPROCESS: Preprocess = {
  size: 224,
  channels: 3,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export interface LoadedModels {
  dit: DiT;
  autoencoder: AutoencoderKL;
  scalingFactor: number;
  selector: Classifier;
  selectorPreprocess: Preprocess;
  /** Validation accuracy recorded with a cao2 selector (used by condition "auto"), if known. */
  selectorAccuracy?: number;
  files: Record<"dit" | "vae" | "selector", { path: string; sha256: string; bytes: number }>;
}

export interface ModelOverrides {
  device: string;
  /** Latent size for DiT checkpoints that do not record it (diffusers), e.g. 32 for 256x256 images. */
  latentSize?: number;
  /** Attention heads of a DiT checkpoint of a size other than S/B/L/XL (the weights do not tell). */
  numHeads?: number;
  /**
   * Which entry of a wrapped DiT checkpoint holds the weights (checkpoint.ts's unwrap): "auto" (default; "ema" of a
   * training checkpoint {"model", "ema", "opt", "args"}), "model", ...
   */
  ditUnwrap?: string;
  /** Latent scaling factor for autoencoders without cao2 metadata (SD: 0.18215). */
  scalingFactor?: number;
  /** Selector input preparation for classifiers without cao2 metadata. */
  selectorPreprocess?: Preprocess;
}

function requireFile(path: string, what: string): void {
  if (!existsSync(path)) throw new InputError(`${what} checkpoint not found: ${path}`);
  if (!statSync(path).isFile()) throw new InputError(`${what} checkpoint ${path} is not a file`);
}

function shapesOf(path: string, unwrap?: string): Map<string, readonly number[]> {
  const ck = openCheckpoint(path, { unwrap });
  try {
    return new Map([...ck.tensors].map(([k, e]) => [k, e.shape]));
  } finally {
    ck.close();
  }
}

export interface DiTLoadOverrides extends ModelOverrides {
  /**
   * Build the Minimax layout (gammas in the first half of the blocks) even when the file is a plain DiT, whose gammas
   * then stay at 1 (what fine-tuning starts from). Without it the architecture follows the file.
   */
  minimaxGammas?: boolean;
}

export function loadDiT(path: string, options: DiTLoadOverrides): DiT {
  requireFile(path, "DiT");
  const meta = readModelMetaOfKind(path, ["dit"], "a DiT");
  const config = meta ? { ...DIT_DEFAULTS, ...meta.config } : ditConfigOfFile(path, options);
  if (options.minimaxGammas && !config.gammaBlocks) config.gammaBlocks = minimaxGammaBlocks(config.depth);
  const dit = createDiT(config, { device: options.device, init: "zeros" });
  tidy(
    () =>
      void dit.loadStateDict(loadStateDict(path, { unwrap: options.ditUnwrap }), {
        gammasFromPlain: options.minimaxGammas,
      }),
  );
  return dit;
}

/** A DiT configuration from the checkpoint's keys and shapes (official or diffusers naming). */
function ditConfigOfFile(path: string, o: ModelOverrides): DiTConfig {
  const g = requireArchitecture(shapesOf(path, o.ditUnwrap), "dit", path);
  const c = g.config;
  const latentSize = (c.latentSize as number | null) ?? o.latentSize;
  if (!latentSize)
    throw new InputError(
      `${path}: the checkpoint does not record its latent size; pass --latent-size (32 for 256x256 DiT)`,
    );
  const numHeads = (c.heads as number | null) ?? o.numHeads;
  if (!numHeads)
    throw new InputError(
      `${path}: a DiT of unknown head count (depth ${c.depth}, hidden ${c.hidden}); only the S/B/L/XL configurations are recognised`,
    );
  return {
    ...DIT_DEFAULTS,
    inputSize: latentSize,
    inChannels: c.inChannels as number,
    numClasses: c.numClasses as number,
    learnSigma: c.learnSigma as boolean,
    depth: c.depth as number,
    hiddenSize: c.hidden as number,
    numHeads,
    patchSize: c.patch as number,
    gammaBlocks: c.gammaBlocks as number,
  };
}

export function loadAutoencoder(
  path: string,
  options: ModelOverrides,
): { autoencoder: AutoencoderKL; scalingFactor: number } {
  requireFile(path, "autoencoder");
  const meta = readModelMetaOfKind(path, ["autoencoder"], "an autoencoder");
  if (meta)
    return {
      autoencoder: fillFromFile(buildModel(meta, options.device) as AutoencoderKL, path),
      scalingFactor: options.scalingFactor ?? meta.scalingFactor,
    };
  const g = requireArchitecture(shapesOf(path), "autoencoder-kl", path);
  if (g.naming === "ldm")
    throw new InputError(
      `${path}: CompVis/LDM key names are not supported; use the diffusers layout (e.g. stabilityai/sd-vae-ft-mse)`,
    );
  const c = g.config;
  const scalingFactor = options.scalingFactor ?? 0.18215;
  const config: AutoencoderKLConfig = {
    inChannels: c.inChannels as number,
    outChannels: c.outChannels as number,
    blockOutChannels: c.blockOutChannels as number[],
    layersPerBlock: c.layersPerBlock as number,
    latentChannels: c.latentChannels as number,
    normNumGroups: 32,
    scalingFactor,
  };
  return {
    autoencoder: fillFromFile(createAutoencoderKL(config, { device: options.device, init: "zeros" }), path),
    scalingFactor,
  };
}

/**
 * The selector: any classifier cao2 builds (models/classifiers.ts). A checkpoint without a cao2 description is read
 * as the ImageNet classifiers are fed (IMAGENET_PREPROCESS) unless the caller says otherwise.
 */
export function loadSelector(
  path: string,
  options: ModelOverrides,
): { selector: Classifier; preprocess: Preprocess; accuracy?: number } {
  requireFile(path, "selector");
  const meta = readModelMetaOfKind(path, CLASSIFIER_KINDS, "a classifier (the selector)");
  if (meta) {
    const ck = openCheckpoint(path);
    const acc = Number(ck.metadata.val_accuracy);
    ck.close();
    return {
      selector: fillFromFile(buildModel(meta, options.device) as Classifier, path),
      preprocess: options.selectorPreprocess ?? meta.preprocess,
      accuracy: Number.isFinite(acc) ? acc : undefined,
    };
  }
  const preprocess = options.selectorPreprocess ?? IMAGENET_PREPROCESS;
  const spec = classifierSpecOf(shapesOf(path), preprocess.size, path);
  return { selector: fillFromFile(buildClassifier(spec, { device: options.device }), path), preprocess };
}

export async function loadModels(
  paths: { dit: string; vae: string; selector: string },
  options: ModelOverrides,
): Promise<LoadedModels> {
  const dit = loadDiT(paths.dit, options);
  const { autoencoder, scalingFactor } = loadAutoencoder(paths.vae, options);
  const { selector, preprocess, accuracy } = loadSelector(paths.selector, options);
  if (autoencoder.config.latentChannels !== dit.config.inChannels) {
    throw new InputError(
      `the autoencoder makes ${autoencoder.config.latentChannels}-channel latents but the DiT takes ${dit.config.inChannels} channels`,
    );
  }
  const info = (path: string) => ({ path, sha256: sha256File(path), bytes: statSync(path).size });
  dit.eval();
  autoencoder.eval();
  selector.eval();
  return {
    dit,
    autoencoder,
    scalingFactor,
    selector,
    selectorPreprocess: preprocess,
    selectorAccuracy: accuracy,
    files: { dit: info(paths.dit), vae: info(paths.vae), selector: info(paths.selector) },
  };
}
