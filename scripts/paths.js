// Resolves the @kernelfleet/<lib> imports of the compiled output in dist/ (tsconfig "paths"
// only exist at compile time).
const path = require('node:path');
const tsconfigPaths = require('tsconfig-paths');
const dist = path.join(__dirname, '..', 'dist');
const libs = ['contracts', 'config', 'store', 'kernel', 'sink', 'telemetry', 'client'];
tsconfigPaths.register({
  baseUrl: dist,
  paths: Object.fromEntries(libs.map((lib) => [`@kernelfleet/${lib}`, [`libs/${lib}/src`]])),
});
