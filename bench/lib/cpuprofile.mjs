/** Summarises a V8 .cpuprofile: the functions with the most self and inclusive (on-stack) time. */
import { readFileSync } from 'node:fs';

const keyOf = (cf) =>
  `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^file:\/\//, '').replace(/^.*?\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;

export function summarise(file, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i] ?? 0) / 1000; // ms
    total += dt;
    let id = prof.samples[i];
    const leaf = keyOf(byId.get(id).callFrame);
    self.set(leaf, (self.get(leaf) ?? 0) + dt);
    const seen = new Set();
    while (id !== undefined) {
      const k = keyOf(byId.get(id).callFrame);
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  const rank = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => ({ fn: k, ms, pct: (100 * ms) / total }));
  const own = new Map([...incl].filter(([k]) => k.includes(' dist/')));
  return {
    totalMs: total,
    self: rank(self),
    inclusive: rank(incl),
    ownInclusive: rank(own),
    selfMap: self,
    inclusiveMap: incl,
  };
}
