// The layering of src/ (README "Layout", docs/architecture.md): every import between folders goes down the order
// below, never up or sideways, so no two folders depend on each other; inside src/torch no file reaches itself
// through value imports (type-only imports are erased at run time and may go both ways).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { ROOT } from "./helpers/fixtures.js";

/** Lowest first; a folder imports only from folders of lower layers. Files directly in src/ are named alone. */
const LAYERS: readonly (readonly string[])[] = [
  ["errors"],
  ["util"],
  ["torch"],
  ["io", "diffusion"],
  ["models"],
  ["distill", "evaluate"],
  ["train", "report"],
  ["cli"],
  ["index"],
];

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** The relative imports of one file (static, re-exports and dynamic import()), as paths relative to src/. */
function importsOf(file: string, text: string): Edge[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out: Edge[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith(".")) return;
    out.push({ from: file, to: join(dirname(file), spec.text).replace(/\.js$/, ".ts"), typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      const allTypes = !!c && !c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, !!c && (c.isTypeOnly || allTypes));
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const folderOf = (path: string) => path.split("/")[0].replace(/\.ts$/, "");

/** One line per import that goes up or sideways (or touches a folder in no layer). */
export function layerViolations(edges: readonly Edge[], layers: readonly (readonly string[])[] = LAYERS): string[] {
  const rank = new Map(layers.flatMap((names, i) => names.map((n) => [n, i] as const)));
  const bad: string[] = [];
  for (const e of edges) {
    const [a, b] = [folderOf(e.from), folderOf(e.to)];
    if (a === b) continue;
    const [ra, rb] = [rank.get(a), rank.get(b)];
    if (ra === undefined || rb === undefined)
      bad.push(`src/${e.from} -> src/${e.to}: '${ra === undefined ? a : b}' is in no layer`);
    else if (rb >= ra)
      bad.push(`src/${e.from} imports src/${e.to}: ${a} may import only from ${layers.slice(0, ra).flat().join(", ")}`);
  }
  return bad;
}

/** The cycles of a graph, each as the files around it (one per strongly connected component, Tarjan). */
export function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const connect = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component = stack.splice(stack.indexOf(v));
      if (component.length > 1 || (next.get(v) ?? []).includes(v)) found.push(component);
    }
  };
  for (const v of next.keys()) if (!index.has(v)) connect(v);
  return found;
}

function sourceEdges(): Edge[] {
  const src = join(ROOT, "src");
  const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  return files
    .flatMap((f) => importsOf(f, readFileSync(join(src, f), "utf8")))
    .map((e) => ({ ...e, to: relative(src, resolve(src, e.to)) }));
}

test("the checks themselves: an upward, a sideways and an unknown import are reported; a cycle is found, a chain is not", () => {
  const e = (from: string, to: string, typeOnly = false): Edge => ({ from, to, typeOnly });
  assert.deepEqual(layerViolations([e("io/a.ts", "torch/b.ts"), e("errors.ts", "torch/b.ts")]), [
    "src/errors.ts imports src/torch/b.ts: errors may import only from ",
  ]);
  assert.equal(
    layerViolations([e("distill/a.ts", "evaluate/b.ts")]).length,
    1,
    "peers of one layer do not import each other",
  );
  assert.match(layerViolations([e("cli/a.ts", "extra/b.ts")])[0], /'extra' is in no layer/);
  assert.deepEqual(cycles([e("a", "b"), e("b", "c"), e("c", "a"), e("c", "d")]), [["a", "b", "c"]]);
  assert.deepEqual(cycles([e("a", "b"), e("b", "c"), e("a", "c")]), []);
  const parsed = importsOf(
    "torch/x.ts",
    'import type { T } from "./t.js";\nimport { type U, v } from "./u.js";\nexport { w } from "../io/w.js";\nconst m = () => import("./m.js");',
  );
  assert.deepEqual(
    parsed.map((p) => [p.to, p.typeOnly]),
    [
      ["torch/t.ts", true],
      ["torch/u.ts", false],
      ["io/w.ts", false],
      ["torch/m.ts", false],
    ],
  );
});

test("src/: every import between folders goes down the layers", () => {
  const edges = sourceEdges();
  assert.ok(edges.length > 300, `found ${edges.length} imports`);
  assert.deepEqual(layerViolations(edges), []);
});

test("src/torch: no cycle of value imports between its files", () => {
  const inTorch = sourceEdges().filter(
    (e) => !e.typeOnly && folderOf(e.from) === "torch" && folderOf(e.to) === "torch",
  );
  assert.ok(inTorch.length > 20, `found ${inTorch.length} imports`);
  assert.deepEqual(cycles(inTorch), []);
});
