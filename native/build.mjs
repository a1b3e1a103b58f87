// `npm install` hook: checks for libtorch with a helpful message, then compiles the addon with node-gyp.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { locateLibtorch } from "./libtorch.mjs";

const here = dirname(fileURLToPath(import.meta.url));
try {
  const lt = locateLibtorch();
  console.log(`cao2: building the libtorch addon against ${lt.libdir} (libs: ${lt.libs.join(", ")})`);
} catch (e) {
  console.error(`cao2: ${e.message}`);
  process.exit(1);
}
const local = join(here, "..", "node_modules", "node-gyp", "bin", "node-gyp.js");
const gyp = process.env.npm_config_node_gyp || (existsSync(local) ? local : undefined);
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ["node-gyp", []];
const jobs = process.env.JOBS ?? "max";
// Build against the running Node's own headers when they are installed (no download); npm may already say where.
const prefix = dirname(dirname(process.execPath));
const nodedir =
  process.env.npm_config_nodedir || (existsSync(join(prefix, "include", "node", "node.h")) ? prefix : undefined);
const extra = nodedir ? [`--nodedir=${nodedir}`] : [];
const r = spawnSync(cmd, [...args, "rebuild", `--jobs=${jobs}`, ...extra], { cwd: here, stdio: "inherit" });
process.exit(r.status ?? 1);
