// The `cao2` command as a user meets it: a child process of the built CLI, its exit status and output.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./fixtures.js";

export const MAIN = join(ROOT, "dist", "src", "cli", "main.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (asynchronously, so other tests' timers keep running). */
export function runProcess(file: string, args: readonly string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: o.cwd, env: o.env ?? process.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** `cao2 <args>` in `cwd`, with extra environment variables. */
export const cao2 = (args: readonly string[], o: { cwd?: string; env?: Record<string, string> } = {}) =>
  runProcess(process.execPath, [MAIN, ...args], { cwd: o.cwd, env: { ...process.env, ...o.env } });

/** The command modules of the CLI (src/cli/<name>.ts exporting `summary` and `run`), by name. */
export async function commandModules(): Promise<Map<string, { run(argv: string[]): Promise<number | void> }>> {
  const dir = join(ROOT, "dist", "src", "cli");
  const out = new Map<string, { run(argv: string[]): Promise<number | void> }>();
  // main.js is the program itself (it runs on import); every other module with `summary` and `run` is a command.
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".js") && f !== "main.js").sort()) {
    const m = (await import(join(dir, f))) as { summary?: string; run?: (argv: string[]) => Promise<number | void> };
    if (typeof m.summary === "string" && typeof m.run === "function") out.set(f.slice(0, -3), m as { run(argv: string[]): Promise<number | void> });
  }
  return out;
}

/** Runs a command in this process (fast: libtorch is loaded once); what it printed on stdout, and what it threw. */
export async function runInProcess(argv: readonly string[]): Promise<{ stdout: string; error?: unknown }> {
  const [name, ...rest] = argv;
  const mod = (await commandModules()).get(name);
  if (!mod) throw new Error(`no command ${name}`);
  const write = process.stdout.write;
  let stdout = "";
  process.stdout.write = ((s: string) => (stdout += s).length > 0) as typeof process.stdout.write;
  try {
    await mod.run(rest);
    return { stdout };
  } catch (error) {
    return { stdout, error };
  } finally {
    process.stdout.write = write;
  }
}
