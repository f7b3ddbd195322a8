// A separate process reserving random USD amounts against one cost cap until it is refused 20 times in a row.
import { CapsStore } from '../../dist/store/sqlite/caps-store.js';
import { openDb } from '../../dist/store/sqlite/db.js';

const [db, seed] = process.argv.slice(2);
const store = new CapsStore(openDb(db), 'UTC');
const rule = {
  tool: 'software_install',
  name: 'spend',
  window: 'day',
  per: 'global',
  measure: 'cost_usd',
  limit: 2000,
  alarmAt: undefined,
};
let sum = 0;
let misses = 0;
let x = Number(seed) + 1;
while (misses < 20) {
  x = (x * 1103515245 + 12345) % 2147483648;
  const amount = [0, 15.5, 39.99, 95.88, 239.88][x % 5];
  const r = store.reserve([{ rule, scopeKey: '*', amount }], Date.now());
  if (r.ok) {
    sum += amount;
    misses = 0;
  } else misses += 1;
}
process.stdout.write(JSON.stringify({ sum }));
