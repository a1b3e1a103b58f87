// `npm run bench -- train`: one training step of the hard-label evaluation nets, batch 64 of 32x32x3 images, 10
// classes (tools/reference/bench_train.py is the PyTorch baseline: torchvision's resnet18 and our ConvNet copy):
//   resnet18_step  ResNet-18 with the small-image ("cifar") stem that the DD codes use for 32x32 data (conv1 3x3
//                  stride 1, no max pool), batch norm in training mode
//   convnet3_step  ConvNet-3 (width 128, instance norm = GroupNorm(128, 128), average pooling)
//   mobilenet_v2_step     torchvision's MobileNetV2 as built (dropout 0.2 before the classifier), batch norm
//   efficientnet_b0_step  torchvision's EfficientNet-B0 as built (dropout 0.2, stochastic depth up to 0.2), batch norm
//   resnet18_step_bf16, convnet3_step_bf16  the same under bf16 autocast (evaluate --precision bf16: the forward
//                  under autocast, the logits back in fp32), against PyTorch's torch.autocast("cpu", torch.bfloat16)
//                  (its ConvNet's instance norms in fp32, as ours); the report also sets them against PyTorch fp32.
//                  Ours runs the ResNet channels-last, as evaluate --precision bf16 does (channelsLastPays); PyTorch's
//                  is plain autocast, what its users write
// A step: gradients to none, forward, cross entropy, backward, SGD (lr 0.01, momentum 0.9, weight decay 5e-4).
import type { Model } from "../src/models/module.js";
import { createConvNet } from "../src/models/convnet.js";
import { createEfficientNetB0 } from "../src/models/efficientnet.js";
import { createMobileNetV2 } from "../src/models/mobilenet.js";
import { createResNet } from "../src/models/resnet.js";
import {
  autocastToFloat,
  F,
  manualSeed,
  type Precision,
  randint,
  randn,
  SGD,
  type Tensor,
  tidy,
} from "../src/torch/index.js";
import { machine, parseOptions, report, sideBySide } from "./common.js";

const BATCH = 64;

function trainStep(
  model: Model & { forward(x: Tensor): Tensor },
  x: Tensor,
  y: Tensor,
  precision: Precision = "fp32",
): () => void {
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  model.train();
  return () => {
    opt.zeroGrad();
    tidy(() =>
      F.crossEntropy(
        autocastToFloat("cpu", precision, () => model.forward(x)),
        y,
      ).backward(),
    );
    opt.step();
  };
}

export async function run(args: string[]): Promise<void> {
  const o = parseOptions(args, { warmup: 2, repeats: 15 });
  const env = machine();
  manualSeed(0);
  const x = randn([BATCH, 3, 32, 32]);
  const y = randint(0, 10, [BATCH]);
  const resnet = () => createResNet({ depth: 18, numClasses: 10, stem: "cifar", norm: "batch" });
  const convnet = () => createConvNet({ numClasses: 10, depth: 3, width: 128, norm: "instance" });
  const steps = {
    resnet18_step: trainStep(resnet(), x, y),
    convnet3_step: trainStep(convnet(), x, y),
    mobilenet_v2_step: trainStep(createMobileNetV2({ numClasses: 10 }), x, y),
    efficientnet_b0_step: trainStep(createEfficientNetB0({ numClasses: 10 }), x, y),
    resnet18_step_bf16: trainStep(resnet().toChannelsLast(), x, y, "bf16"),
    convnet3_step_bf16: trainStep(convnet(), x, y, "bf16"),
  };
  const result = await sideBySide("bench_train.py", steps, o);
  report(o.out ?? "train", result.cases, {
    ...env,
    setup: {
      batch: BATCH,
      input: [3, 32, 32],
      classes: 10,
      resnet18: "torchvision ResNet-18, cifar stem (conv1 3x3 stride 1, no max pool), batch norm",
      convnet3: "ConvNet-3, width 128, instance norm (GroupNorm(128, 128)), avg pool",
      mobilenet_v2: "torchvision MobileNetV2, dropout 0.2",
      efficientnet_b0: "torchvision EfficientNet-B0, dropout 0.2, stochastic depth 0.2",
      optimizer: "SGD lr 0.01 momentum 0.9 weight decay 5e-4",
    },
    options: o,
    python_env: result.python_env,
    samples: result.samples,
    paired_ratio: result.paired_ratio,
    cpu: result.cpu,
  });
}
