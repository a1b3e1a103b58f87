// Lock files for work that several processes share through a folder (on one machine, or on many that mount the same
// file system): a unit of work is taken by creating its lock file exclusively (createFileExclusive, so a reader
// never sees half a lock), the file names its holder (host, pid, start time, scheduler task), and the holder touches
// it while it works (a heartbeat: the file's modification time). A lock is stale, and is taken over, when
//   1. its holder ran on this host and its process is gone (a kill, a crash, an out-of-memory kill), or
//   2. its holder was an earlier run of this very scheduler task, i.e. the lock names this task and was taken before
//      this process started (Slurm runs one instance of an array task at a time, and a Kubernetes Indexed Job with
//      podReplacementPolicy Failed one pod per index, so a requeued task's or retried pod's old lock is its own,
//      wherever the old one ran), or
//   3. its heartbeat is older than the stale age (a holder on another host that died with its machine).
// A holder that stalls for longer than the stale age loses its lock; the work is then done twice, which is harmless
// here (both write the same bytes atomically) but wasteful, so the stale age must exceed the longest pause between
// heartbeats.
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { hostname } from "node:os";
import { createFileExclusive } from "./atomic.js";
import { isRecord } from "./state-file.js";

export interface LockHolder {
  host: string;
  pid: number;
  /** When the holder took the lock (ISO time). */
  since: string;
  /** The scheduler task that ran the holder (e.g. "slurm:1234_2", "k8s:distill-3"), when there was one. */
  task?: string;
  /** What the holder was doing (e.g. "shard 1/3"). */
  role?: string;
  /** Tells this lock from any other, including a later one of the same process. */
  token: string;
}

/**
 * The scheduler task this process runs as, if any: the identity that a requeued or retried task keeps. A Slurm job
 * (array task); a pod of a Kubernetes Indexed Job, whose host name is `<job name>-<index>` for every pod of that index.
 */
export function schedulerTask(env: NodeJS.ProcessEnv = process.env, host = hostname()): string | undefined {
  const job = env.SLURM_ARRAY_JOB_ID ?? env.SLURM_JOB_ID;
  if (job !== undefined)
    return env.SLURM_ARRAY_TASK_ID === undefined ? `slurm:${job}` : `slurm:${job}_${env.SLURM_ARRAY_TASK_ID}`;
  if (env.JOB_COMPLETION_INDEX !== undefined && host.endsWith(`-${env.JOB_COMPLETION_INDEX}`)) return `k8s:${host}`;
  return undefined;
}

/** A lock as found on disk: its holder (undefined when unreadable: being written or replaced) and heartbeat age. */
export interface LockState {
  holder?: LockHolder;
  ageS: number;
}

export function readLock(path: string): LockState | undefined {
  let age: number;
  let text: string;
  try {
    age = (Date.now() - statSync(path).mtimeMs) / 1000;
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ageS: age };
  }
  const ok = isRecord(v) && typeof v.host === "string" && typeof v.pid === "number" && typeof v.token === "string";
  return { holder: ok ? (v as unknown as LockHolder) : undefined, ageS: age };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** This process: its host, scheduler task and start time (ms since the epoch). */
const ME = { host: hostname(), task: schedulerTask(), startedAt: performance.timeOrigin };

/** Why a lock is stale under the rule above, or undefined while its holder may still be working. */
export function staleReason(layout: LockState, staleAfterS: number, me = ME): string | undefined {
  const h = layout.holder;
  if (h && h.host === me.host && h.pid !== process.pid && !processAlive(h.pid))
    return `its process ${h.pid} on this host is gone`;
  if (h && h.task !== undefined && h.task === me.task && Date.parse(h.since) < me.startedAt)
    return `it was taken by an earlier run of this task (${h.task})`;
  if (layout.ageS > staleAfterS)
    return `no heartbeat for ${Math.round(layout.ageS)} s (the stale age is ${staleAfterS} s)`;
  return undefined;
}

export const describeHolder = (h: LockHolder | undefined) =>
  h
    ? `${h.role ? `${h.role}, ` : ""}host ${h.host} pid ${h.pid}${h.task ? ` (${h.task})` : ""}, since ${h.since}`
    : "an unreadable holder";

/** A lock this process holds. */
export class HeldLock {
  private lastBeat = Date.now();
  constructor(
    readonly path: string,
    readonly holder: LockHolder,
  ) {}

  /** Touches the lock at most every `everyMs` (call it as often as convenient). */
  heartbeat(everyMs = 15_000): void {
    const now = Date.now();
    if (now - this.lastBeat < everyMs) return;
    this.lastBeat = now;
    try {
      utimesSync(this.path, now / 1000, now / 1000);
    } catch {
      // Taken over (or removed) meanwhile: the work goes on; its result is written atomically either way.
    }
  }

  /** Removes the lock if it is still this one (a lock taken over by another process stays theirs). */
  release(): void {
    if (readLock(this.path)?.holder?.token === this.holder.token) rmSync(this.path, { force: true });
  }
}

export type Acquired = { held: HeldLock; tookOver?: { from: LockState; reason: string } } | { busy: LockState };

/**
 * Takes the lock at `path` (its folder must exist): free, or stale under the rule above (then `tookOver` says whose
 * and why, for the log); else `busy` with its holder.
 */
export function acquireLock(path: string, options: { staleAfterS: number; role?: string }): Acquired {
  const holder: LockHolder = {
    host: hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    task: schedulerTask(),
    role: options.role,
    token: randomBytes(8).toString("hex"),
  };
  const text = JSON.stringify(holder, null, 2) + "\n";
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createFileExclusive(path, text)) return { held: new HeldLock(path, holder) };
    const found = readLock(path);
    if (!found) continue; // released meanwhile
    const reason = staleReason(found, options.staleAfterS);
    if (!reason) return { busy: found };
    // Move the stale lock aside (one of several processes doing this at once wins the rename), check that the file
    // moved is the one judged stale, and create ours; a fresh lock moved by mistake is put back.
    const aside = `${path}.${holder.token}.stale`;
    try {
      renameSync(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const moved = readLock(aside);
    if (moved?.holder?.token !== found.holder?.token) {
      createFileExclusive(path, readFileSync(aside));
      rmSync(aside, { force: true });
      continue;
    }
    rmSync(aside, { force: true });
    if (createFileExclusive(path, text)) return { held: new HeldLock(path, holder), tookOver: { from: found, reason } };
  }
  const found = readLock(path);
  return { busy: found ?? { ageS: 0 } };
}
