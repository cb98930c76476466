// Builds the @kernelfleet/client package (libs/client) to libs/client/dist: ES modules in
// dist/esm (marked "type": "module"; the package itself is CommonJS), CommonJS in dist/cjs, with types.
const { execFileSync } = require('node:child_process');
const { rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const client = path.join(__dirname, '..', 'libs', 'client');
const tsc = require.resolve('typescript/bin/tsc');
rmSync(path.join(client, 'dist'), { recursive: true, force: true });
for (const flavour of ['esm', 'cjs']) {
  execFileSync(process.execPath, [tsc, '-p', path.join(client, `tsconfig.${flavour}.json`)], { stdio: 'inherit' });
}
writeFileSync(path.join(client, 'dist', 'esm', 'package.json'), '{ "type": "module" }\n');
