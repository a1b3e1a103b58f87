// Deterministic seeds and a small JS random source. Every unit of work (a class, a candidate, a repeat) gets its own
// seed derived from the run's seed and its identity, so results do not depend on batch sizes, order of work,
// resumption or the device.

/** SplitMix64 step: a well-mixed 64-bit value from any 64-bit input. */
function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  return z ^ (z >> 31n);
}

/** A 53-bit seed (exact as a JS number) for the given run seed and path of integers or strings. */
export function deriveSeed(seed: number, ...path: (number | string)[]): number {
  let h = splitmix64(BigInt(seed));
  for (const p of path) {
    const v =
      typeof p === "number"
        ? BigInt(p)
        : [...Buffer.from(p, "utf8")].reduce((a, b) => (a * 257n + BigInt(b)) & 0xffffffffffffffffn, 7n);
    h = splitmix64(h ^ v);
  }
  return Number(h >> 11n);
}

/** Mulberry32: a small, fast, seedable source of floats in [0, 1) for orderings and choices (not for tensors). */
export function randomSource(seed: number): () => number {
  let a = (seed ^ Math.floor(seed / 4294967296)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates with the given source, so orders are reproducible from a seed. */
export function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
