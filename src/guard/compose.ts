import type { Guard } from './types.js';

/** compose(a, b, c)(h) runs a → b → c → h: the first guard listed is the outermost. */
export const compose =
  (...guards: Guard[]): Guard =>
  (h) =>
    guards.reduceRight((next, g) => g(next), h);
