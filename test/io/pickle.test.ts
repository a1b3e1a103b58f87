// The safe unpickler on hand-assembled pickles: what it builds, what it refuses (naming the global), and that a
// payload never runs. Real torch.save pickles (protocols 2 and 4) are covered by checkpoint.test.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { test } from "node:test";
import { PickleError, PyGlobal, PyObject, unpickle, UnsafePickleError } from "../../src/io/pickle.js";
import { fixture } from "../helpers/fixtures.js";

/** Pickle bytes from opcodes: numbers are single bytes, strings are latin1 text. */
const P = (...parts: (number | string | Uint8Array)[]) =>
  new Uint8Array(
    Buffer.concat(
      parts.map((p) =>
        typeof p === "number" ? Buffer.from([p]) : typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p),
      ),
    ),
  );
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const str = (s: string) => P("X", u32(Buffer.byteLength(s)), Buffer.from(s, "utf8"));
const f64be = (x: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b;
};
const PROTO2 = P(0x80, 2);

const refusedNaming = (global: string, verb: string) => (e: unknown) =>
  e instanceof UnsafePickleError &&
  e.global === global &&
  e.message.includes(`refusing to load: the checkpoint ${verb} ${global}`);

test("plain values: ints of every width, floats, strings, bytes, containers, memo and shared references", () => {
  const data = P(
    PROTO2,
    "}q\x00(", // EMPTY_DICT, BINPUT 0, MARK
    str("ints"),
    "(",
    "K\xff",
    "M\x00\x01",
    "J",
    Buffer.from([0xfe, 0xff, 0xff, 0xff]),
    0x8a,
    1,
    0xff,
    0x8a,
    9,
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 1]),
    "I01\n",
    "I-12\n",
    "L123456789012345678901234567890L\n",
    "l",
    str("float"),
    "G",
    f64be(-2.5),
    str("text"),
    0x8c,
    5,
    "h\xc3\xa9ll", // SHORT_BINUNICODE (UTF-8)
    str("bytes"),
    "C\x03abc",
    str("tuple"),
    "K\x01K\x02",
    0x86,
    "q\x01", // TUPLE2, BINPUT 1
    str("same"),
    "h\x01", // BINGET 1: the same tuple object
    str("set"),
    0x8f,
    "(K\x01K\x02",
    0x90, // EMPTY_SET, ADDITEMS
    str("none"),
    "N",
    "u.", // SETITEMS, STOP
  );
  const v = unpickle(data) as Map<string, unknown>;
  assert.deepEqual(v.get("ints"), [255, 256, -2, -1, 2n ** 64n, true, -12, 123456789012345678901234567890n]);
  assert.equal(v.get("float"), -2.5);
  assert.equal(v.get("text"), "héll");
  assert.deepEqual(v.get("bytes"), new Uint8Array([97, 98, 99]));
  assert.deepEqual(v.get("tuple"), [1, 2]);
  assert.ok(Object.isFrozen(v.get("tuple")));
  assert.equal(v.get("same"), v.get("tuple"));
  assert.deepEqual(v.get("set"), new Set([1, 2]));
  assert.equal(v.get("none"), null);
});

test("a list of 200,000 items appended at once (APPENDS) builds", () => {
  const v = unpickle(P(PROTO2, "](", "K\x07".repeat(200_000), "e.")) as number[];
  assert.equal(v.length, 200_000);
  assert.equal(v[199_999], 7);
});

test("a list that contains itself (through the memo) builds without recursing", () => {
  const v = unpickle(P(PROTO2, "]q\x00h\x00a.")) as unknown[];
  assert.equal(v[0], v);
});

test("allowlisted globals run our implementation: OrderedDict, set, bytes through _codecs.encode", () => {
  const data = P(
    PROTO2,
    "(",
    "ccollections\nOrderedDict\n)R(",
    str("a"),
    "K\x01u", // OrderedDict() then SETITEMS
    "c__builtin__\nset\n]",
    "(K\x03K\x04e",
    0x85,
    "R", // set([3, 4])
    "c_codecs\nencode\n",
    str("\xff\x01"),
    str("latin1"),
    0x86,
    "R", // bytes b'\xff\x01'
    "t.",
  );
  const [od, s, b] = unpickle(data) as [Map<string, number>, Set<number>, Uint8Array];
  assert.deepEqual([...od], [["a", 1]]);
  assert.deepEqual(s, new Set([3, 4]));
  assert.deepEqual(b, new Uint8Array([0xff, 0x01]));
});

test("an unknown class made the protocol-2 way (NEWOBJ + BUILD) becomes an inert placeholder with its state", () => {
  const data = P(
    PROTO2,
    "cargparse\nNamespace\n)",
    0x81,
    "}(",
    str("lr"),
    "G",
    f64be(0.1),
    str("arch"),
    str("dit"),
    "ub.",
  );
  const v = unpickle(data);
  assert.ok(v instanceof PyObject);
  assert.equal(v.cls.qualname, "argparse.Namespace");
  assert.deepEqual(
    [...(v.state as Map<string, unknown>)],
    [
      ["lr", 0.1],
      ["arch", "dit"],
    ],
  );
});

test("calls of globals that are not allowlisted are refused, naming the global", () => {
  // REDUCE of an ordinary but unknown callable.
  assert.throws(
    () => unpickle(P(PROTO2, "cfunctools\npartial\n", "cbuiltins\nmax\n", 0x85, "R."), { source: "x.pt" }),
    (e: unknown) => {
      return refusedNaming("functools.partial", "calls")(e) && (e as Error).message.startsWith("x.pt: ");
    },
  );
  // A placeholder can never be called either: REDUCE of an object that is not a global.
  assert.throws(
    () => unpickle(P(PROTO2, "cargparse\nNamespace\n)", 0x81, ")R.")),
    /calls a value \(argparse.Namespace\) that is not a global/,
  );
});

test("dangerous globals are refused however they are used: REDUCE, INST, OBJ, NEWOBJ, STACK_GLOBAL, or just named", () => {
  const cases: [Uint8Array, string, string][] = [
    [P(PROTO2, "cposix\nsystem\n", str("touch /tmp/x"), 0x85, "R."), "posix.system", "calls"],
    [P("(", str("touch /tmp/x"), "ios\nsystem\n."), "os.system", "calls"],
    [P("(cos\nsystem\n", str("touch /tmp/x"), "o."), "os.system", "calls"],
    [P(PROTO2, "csubprocess\nPopen\n)", 0x81, "."), "subprocess.Popen", "instantiates"],
    [
      P(0x80, 4, 0x8c, 8, "builtins", 0x94, 0x8c, 4, "eval", 0x94, 0x93, 0x94, str("1+1"), 0x85, "R."),
      "builtins.eval",
      "calls",
    ],
    [P(PROTO2, "]cos\nsystem\na."), "os.system", "references"],
    [P(PROTO2, "c__builtin__\ngetattr\n."), "__builtin__.getattr", "references"],
  ];
  for (const [data, global, verb] of cases) assert.throws(() => unpickle(data), refusedNaming(global, verb), global);
});

test("a real pickle whose __reduce__ calls os.system is refused and its payload never runs", () => {
  const marker = "/tmp/cao2_ckpt_marker_system";
  rmSync(marker, { force: true });
  assert.throws(
    () => unpickle(readFileSync(fixture("io", "malicious_raw.pkl"))),
    refusedNaming("posix.system", "calls"),
  );
  assert.equal(existsSync(marker), false);
});

test("malformed pickles give PickleErrors, not crashes", () => {
  const cases: [Uint8Array, RegExp][] = [
    [P(PROTO2, "X", u32(16), "ab"), /truncated/],
    [P(PROTO2, 0xff), /unknown pickle opcode 0xff/],
    [P(PROTO2, "h\x07."), /memo has no entry 7/],
    [P(PROTO2, "a."), /stack underflow/],
    [P(PROTO2, "u."), /MARK missing/],
    [P(PROTO2, "K\x01Q."), /persistent id/],
    [P(PROTO2, 0x82, 1, "."), /copyreg extension registry/],
    [P(PROTO2, "K\x01K\x02", 0x86, "K\x03a."), /APPEND on a tuple/],
    [P(PROTO2, "K\x01}b."), /BUILD on a int 1/],
    [P(0x80, 9), /protocol newer than 5/],
  ];
  for (const [data, re] of cases)
    assert.throws(
      () => unpickle(data),
      (e: unknown) => e instanceof PickleError && re.test((e as Error).message),
      String(re),
    );
});

test("a global that is only named (not dangerous, not called) stays a reference", () => {
  const v = unpickle(P(PROTO2, "ctorch\nfloat16\n."));
  assert.ok(v instanceof PyGlobal);
  assert.equal(v.qualname, "torch.float16");
});
