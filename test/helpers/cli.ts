// The `cao2` command as a user meets it: a child process of the built CLI, its exit status and output.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { SUMMARIES } from "../../src/cli/commands.js";
import { ROOT } from "./fixtures.js";

export const MAIN = join(ROOT, "dist", "src", "cli", "main.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (asynchronously, so other tests' timers keep running). */
export function runProcess(
  file: string,
  args: readonly string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
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

/** The command modules of the CLI (src/cli/<name>.ts for every name in src/cli/commands.ts), by name. */
export async function commandModules(): Promise<Map<string, { run(argv: string[]): Promise<number | void> }>> {
  const out = new Map<string, { run(argv: string[]): Promise<number | void> }>();
  for (const name of Object.keys(SUMMARIES).sort()) {
    out.set(
      name,
      (await import(join(ROOT, "dist", "src", "cli", `${name}.js`))) as { run(argv: string[]): Promise<number | void> },
    );
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
