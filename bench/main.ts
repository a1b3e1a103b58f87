// `npm run bench -- <name> [args]`: runs one side-by-side benchmark (bench/<name>.ts exports run(args)).
const BENCHES: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  engine: () => import("./engine.js"),
  distill: () => import("./distill.js"),
  train: () => import("./train.js"),
  memory: () => import("./memory.js"),
  checkpoint: () => import("./checkpoint-load.js"),
  report: () => import("./report.js"),
  loader: () => import("./loader.js"),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join("|")}> [args]`);
  process.exitCode = 2;
} else {
  await (await load()).run(args);
}
