// What the results scripts share: the repository root (they run from there), one `cao2` command as a step of a
// resumable sweep, and reading a record that may not exist yet.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export const show = (argv) => `cao2 ${argv.join(" ")}`;

/**
 * Runs `cao2 <argv>` in the foreground. On failure it names the command and exits (130 after Ctrl-C): everything
 * finished so far is kept, so running the script again continues.
 */
export function runCao2(argv, script) {
  process.stderr.write(`\n$ ${show(argv)}\n`);
  // glibc's dynamic mmap threshold lets a long libtorch training loop grow without bound (docs/evaluation.md).
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? "131072" };
  const r = spawnSync(process.execPath, ["dist/src/cli/main.js", ...argv], { stdio: "inherit", env });
  if (r.status !== 0) {
    process.stderr.write(
      `${script}: '${show(argv)}' failed (exit ${r.status ?? r.signal}); rerun the script to continue\n`,
    );
    process.exit(r.status === 130 || r.signal === "SIGINT" ? 130 : 1);
  }
}

/** A JSON file's value, or undefined while the file does not exist. */
export const readJson = (p) => (existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : undefined);
