// Class shards: a run's classes split into N parts that separate processes (Slurm array tasks, Kubernetes Indexed
// Job pods, or plain processes) distil into one output. Shard K of N (K from 0) takes a contiguous block of the
// run's classes in label order, the blocks' sizes differing by at most one; every process computes the same split
// from the class list alone, so nothing has to be shared but the output folder.
import { InputError } from "../errors.js";

export interface Shard {
  index: number;
  count: number;
  /** Where the shard came from, for the log: the flag or the scheduler's variables. */
  source: string;
}

export const shardName = (s: Pick<Shard, "index" | "count">) => `${s.index}/${s.count}`;

const SHARD_FORMAT = "expected K/N, shard K of N with K counted from 0 (e.g. 0/4 ... 3/4)";

/** Parses `--shard K/N`. */
export function parseShard(text: string, source = `--shard ${text}`): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new InputError(`${source}: ${SHARD_FORMAT}`);
  const [index, count] = [Number(m[1]), Number(m[2])];
  if (count < 1) throw new InputError(`${source}: the shard count N must be at least 1, got ${count}`);
  if (index >= count)
    throw new InputError(`${source}: the shard index K must be in 0..${count - 1} (K/N counts K from 0), got ${index}`);
  return { index, count, source };
}

const integer = (env: NodeJS.ProcessEnv, name: string): number | undefined => {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) throw new InputError(`${name}=${v} in the environment is not a non-negative integer`);
  return Number(v);
};

/**
 * The shard of this process: `--shard K/N`; else `--shards N` with the index from Kubernetes' JOB_COMPLETION_INDEX
 * or Slurm's SLURM_ARRAY_TASK_ID; else a Slurm job array's task (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of
 * SLURM_ARRAY_TASK_COUNT); else none (the whole run).
 */
export function resolveShard(
  flags: { shard?: string; shards?: number },
  env: NodeJS.ProcessEnv = process.env,
): Shard | undefined {
  if (flags.shard !== undefined && flags.shards !== undefined)
    throw new InputError("give either --shard K/N or --shards N (with the index from the scheduler), not both");
  if (flags.shard !== undefined) return parseShard(flags.shard);
  const slurmId = integer(env, "SLURM_ARRAY_TASK_ID");
  const slurmIndex = slurmId === undefined ? undefined : slurmId - (integer(env, "SLURM_ARRAY_TASK_MIN") ?? 0);
  if (flags.shards !== undefined) {
    const k8s = integer(env, "JOB_COMPLETION_INDEX");
    const [index, name] =
      k8s !== undefined ? [k8s, `JOB_COMPLETION_INDEX=${k8s}`] : [slurmIndex, `SLURM_ARRAY_TASK_ID=${slurmId}`];
    if (index === undefined)
      throw new InputError(
        `--shards ${flags.shards} takes the shard index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID, and neither is set; use --shard K/N`,
      );
    return parseShard(`${index}/${flags.shards}`, `--shards ${flags.shards} with ${name}`);
  }
  if (slurmIndex === undefined) return undefined;
  const count = integer(env, "SLURM_ARRAY_TASK_COUNT");
  const source = `SLURM_ARRAY_TASK_ID=${slurmId}, SLURM_ARRAY_TASK_MIN=${env.SLURM_ARRAY_TASK_MIN ?? "unset"}, SLURM_ARRAY_TASK_COUNT=${count ?? "unset"}`;
  if (count === undefined)
    throw new InputError(`a Slurm array task without SLURM_ARRAY_TASK_COUNT (${source}): pass --shard K/N`);
  // A sparse array (--array=0,4,9) has ids beyond its count: the shard index would not be the task's place in it.
  if (slurmIndex < 0 || slurmIndex >= count)
    throw new InputError(
      `${source}: the array must be contiguous (e.g. --array=0-${count - 1}) for its tasks to be shards; or pass --shard K/N`,
    );
  return { index: slurmIndex, count, source };
}

/** The classes of shard K of N: a contiguous block of the list, sizes balanced (floor or ceil of classes / N). */
export function shardClasses<T>(classes: readonly T[], s: Pick<Shard, "index" | "count">): T[] {
  const at = (k: number) => Math.floor((k * classes.length) / s.count);
  return classes.slice(at(s.index), at(s.index + 1));
}
