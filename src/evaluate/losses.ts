// The two protocols' training losses.
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";

/**
 * Hard-label CutMix loss (Minimax/IDC train_epoch): lam * CE(logits, y) + (1 - lam) * CE(logits, y[partner]), each
 * CE the batch mean. `partner` is the permutation CutMix pasted from; `lam` the weight of each image's own label
 * (1 - box area / image area). lam = 1 gives plain cross-entropy.
 */
export function cutmixCrossEntropy(logits: Tensor, y: Tensor, partner: Tensor, lam: number): Tensor {
  return torch.tidy(() => {
    const own = torch.F.crossEntropy(logits, y);
    if (lam === 1) return own;
    const other = torch.F.crossEntropy(logits, torch.indexSelect(y, 0, partner.to(y.device)));
    return own.mul(lam).add(other.mul(1 - lam));
  });
}

/**
 * Soft-label loss (RDED validation/main.py): KLDivLoss(reduction="batchmean")(log_softmax(student / T),
 * softmax(teacher / T)) = sum over the batch of KL(teacher_T || student_T), divided by the batch size. RDED does not
 * multiply by T^2 (Hinton et al.'s gradient-scale correction), so neither do we: with T = 20 and AdamW the overall
 * scale matters little, but the numbers in a record stay comparable to RDED's logs.
 */
export function softLabelKl(studentLogits: Tensor, teacherLogits: Tensor, temperature: number): Tensor {
  return torch.tidy(() => {
    const logP = torch.F.logSoftmax(studentLogits.div(temperature), 1);
    const q = torch.F.softmax(teacherLogits.div(temperature), 1);
    return torch.F.klDiv(logP, q, { reduction: "batchmean" });
  });
}
