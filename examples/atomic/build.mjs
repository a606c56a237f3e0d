// Bundles the page's script with Atomic (from npm, made for a bundler) into dist/, chunks loaded as needed;
// index.html loads dist/src.js. Nothing is fetched from another host at run time.
// Usage: npm ci && npm run build
import {build} from 'esbuild';

await build({
  entryPoints: ['src.js'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  outdir: 'dist',
  logLevel: 'warning',
});
