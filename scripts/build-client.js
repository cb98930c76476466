// Builds the @kernelfleet/client package (libs/client) to libs/client/dist: ESM in dist/esm,
// CommonJS in dist/cjs (marked as such: the package itself is "type": "module"), with types.
const { execFileSync } = require('node:child_process');
const { mkdirSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const client = path.join(__dirname, '..', 'libs', 'client');
const tsc = require.resolve('typescript/bin/tsc');
rmSync(path.join(client, 'dist'), { recursive: true, force: true });
for (const flavour of ['esm', 'cjs']) {
  execFileSync(process.execPath, [tsc, '-p', path.join(client, `tsconfig.${flavour}.json`)], { stdio: 'inherit' });
}
mkdirSync(path.join(client, 'dist', 'cjs'), { recursive: true });
writeFileSync(path.join(client, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
