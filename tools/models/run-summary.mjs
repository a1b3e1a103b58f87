#!/usr/bin/env node
// Summary of a `cao2 train` run folder for a model card: steps, training time (the sum of the logged windows'
// durations, so pauses between sittings do not count), sittings, and the last validation metrics.
//   node tools/models/run-summary.mjs <run folder>
import { readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node tools/models/run-summary.mjs <run folder>\n");
  process.exit(2);
}
const lines = readFileSync(join(dir, "log.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l));
const steps = lines.filter((l) => l.steps_per_s !== undefined);
let seconds = 0;
let prev = 0;
let sittings = 1;
let lastTime = 0;
for (const l of steps) {
  seconds += (l.step - prev) / l.steps_per_s;
  prev = l.step;
  const t = Date.parse(l.time);
  // a gap of more than 10 minutes between log lines is a stop and a resume
  if (lastTime && t - lastTime > 600_000) sittings++;
  lastTime = t;
}
const vals = lines.filter((l) => l.steps_per_s === undefined);
const h = (s) => `${(s / 3600).toFixed(2)} h`;
console.log(
  JSON.stringify(
    {
      steps: prev,
      trainingSeconds: Math.round(seconds),
      trainingTime: h(seconds),
      sittings,
      first: steps[0]?.time,
      last: steps.at(-1)?.time,
      lastValidation: vals.at(-1),
      validations: vals.map(({ time: _t, ...v }) => v),
    },
    null,
    2,
  ),
);
