/** The store ports (DESIGN §5): the guards' (guard.ts) and the operator surfaces' (operator.ts). */
export * from './guard.js';
export * from './operator.js';
