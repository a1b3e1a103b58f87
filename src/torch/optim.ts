// Optimisers with PyTorch's update rules, op for op (torch.optim's single-tensor CPU implementations of 1.13), so
// trajectories match PyTorch's. Parameter groups carry their own hyperparameters; state can be saved and restored.
import { noGrad } from "./autograd.js";
import { call, callInPlace } from "./dispatch.js";
import { addcdivInto, addcmulInto, addInto, mulInto } from "./ops.js";
import { keep } from "./scope.js";
import type { Tensor } from "./tensor.js";

export type ParamGroup<H> = { params: Tensor[] } & Partial<H>;
type State = Record<string, Tensor | number>;

/** What stateDict() returns: per-parameter state keyed by the parameter's position across groups, as PyTorch. */
export interface OptimizerState<H> {
  state: Record<number, State>;
  paramGroups: (H & { params: number[] })[];
}

export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ({ params: Tensor[] } & H)[];
  protected readonly state = new Map<Tensor, State>();

  constructor(params: Tensor[] | ParamGroup<H>[], defaults: H) {
    const groups = (params.length > 0 && !isGroup(params[0]) ? [{ params }] : params) as ParamGroup<H>[];
    this.paramGroups = groups.map((g) => ({ ...defaults, ...g }) as { params: Tensor[] } & H);
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error("a parameter appears in more than one parameter group");
        seen.add(p);
      }
    }
  }

  /** Clears every parameter's gradient (set to none, PyTorch's default). */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.zeroGrad();
  }

  /** Frees the optimiser's state tensors (moments, momentum buffers); the optimiser starts afresh if used again. */
  dispose(): void {
    for (const st of this.state.values()) for (const v of Object.values(st)) if (typeof v !== "number") v.dispose();
    this.state.clear();
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const grad = p.grad;
          if (!grad) continue;
          let st = this.state.get(p);
          if (!st) this.state.set(p, (st = {}));
          this.update(p, grad, st, group);
          grad.dispose();
        }
      }
    });
  }

  protected abstract update(p: Tensor, grad: Tensor, state: State, h: H): void;

  /** State keyed by parameter index (over all groups in order) plus each group's hyperparameters. */
  stateDict(): OptimizerState<H> {
    const state: Record<number, State> = {};
    let i = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...h } = g;
      const ids = params.map((p) => {
        const s = this.state.get(p);
        if (s) state[i] = { ...s };
        return i++;
      });
      return { ...(h as unknown as H), params: ids };
    });
    return { state, paramGroups };
  }

  /** Restores hyperparameters and state saved by stateDict() (tensors are copied). */
  loadStateDict(sd: OptimizerState<H>): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `optimizer state has ${sd.paramGroups.length} parameter groups, this optimizer has ${this.paramGroups.length}`,
      );
    }
    this.state.clear();
    sd.paramGroups.forEach((saved, gi) => {
      const group = this.paramGroups[gi];
      if (saved.params.length !== group.params.length) {
        throw new Error(
          `parameter group ${gi}: saved state has ${saved.params.length} parameters, this group has ${group.params.length}`,
        );
      }
      const { params: ids, ...h } = saved;
      Object.assign(group, h);
      ids.forEach((id, k) => {
        const s = sd.state[id];
        if (!s) return;
        const copy: State = {};
        // The state joins its parameter's device (a checkpoint is read onto the CPU).
        const p = group.params[k];
        for (const [key, v] of Object.entries(s))
          copy[key] = typeof v === "number" ? v : keep(v.device === p.device ? v.clone() : v.to(p.device));
        this.state.set(p, copy);
      });
    });
  }
}

function isGroup(v: unknown): v is ParamGroup<unknown> {
  return typeof v === "object" && v !== null && Array.isArray((v as { params?: unknown }).params);
}

/** A zero tensor shaped like p that outlives scopes (optimiser state). */
const zerosLikeKept = (p: Tensor) => keep(call("zeros_like", p));

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Tensor[] | ParamGroup<SGDOptions>[], o: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...o });
    for (const g of this.paramGroups) {
      if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
        throw new Error("SGD: Nesterov momentum requires momentum > 0 and zero dampening");
    }
  }

  protected update(p: Tensor, grad: Tensor, st: State, h: SGDOptions): void {
    let d = grad;
    const owned: Tensor[] = [];
    if (h.weightDecay !== 0) owned.push((d = call("add.Tensor", d, p, h.weightDecay)));
    if (h.momentum !== 0) {
      let buf = st.momentum_buffer as Tensor | undefined;
      if (!buf) st.momentum_buffer = buf = keep(call("clone", d));
      else {
        mulInto(buf, h.momentum);
        addInto(buf, d, 1 - h.dampening);
      }
      if (h.nesterov) owned.push((d = call("add.Tensor", d, buf, h.momentum)));
      else d = buf;
    }
    addInto(p, d, -h.lr);
    for (const t of owned) t.dispose();
  }
}

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/** Adam; with `decoupled` (AdamW) the weight decay multiplies the parameter instead of adding to the gradient. */
abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  protected update(p: Tensor, grad: Tensor, st: State, h: AdamOptions): void {
    if (st.step === undefined) {
      st.step = 0;
      st.exp_avg = zerosLikeKept(p);
      st.exp_avg_sq = zerosLikeKept(p);
      if (h.amsgrad) st.max_exp_avg_sq = zerosLikeKept(p);
    }
    const [beta1, beta2] = h.betas;
    const step = (st.step as number) + 1;
    st.step = step;
    let g = grad;
    const owned: Tensor[] = [];
    if (this.decoupled) mulInto(p, 1 - h.lr * h.weightDecay);
    else if (h.weightDecay !== 0) owned.push((g = call("add.Tensor", grad, p, h.weightDecay)));
    const expAvg = st.exp_avg as Tensor;
    const expAvgSq = st.exp_avg_sq as Tensor;
    mulInto(expAvg, beta1);
    addInto(expAvg, g, 1 - beta1);
    mulInto(expAvgSq, beta2);
    addcmulInto(expAvgSq, g, g, 1 - beta2);
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const stepSize = h.lr / biasCorrection1;
    let second = expAvgSq;
    if (h.amsgrad) {
      const maxSq = st.max_exp_avg_sq as Tensor;
      callInPlace("maximum.out", maxSq, expAvgSq, maxSq);
      second = maxSq;
    }
    const root = call("sqrt", second);
    const denom = call("div.Scalar", root, Math.sqrt(biasCorrection2));
    addInto(denom, h.eps);
    addcdivInto(p, expAvg, denom, -stepSize);
    for (const t of [root, denom, ...owned]) t.dispose();
  }
}

export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Tensor[] | ParamGroup<AdamOptions>[], o: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, ...o });
  }
}

export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Tensor[] | ParamGroup<AdamOptions>[], o: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, ...o });
  }
}
