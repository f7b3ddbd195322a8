// Makes the CLI entry executable after tsc (npm links bin files, but a direct ./dist/cli.js run needs the bit).
import { chmodSync, existsSync } from 'node:fs';
if (existsSync('dist/cli.js')) chmodSync('dist/cli.js', 0o755);
