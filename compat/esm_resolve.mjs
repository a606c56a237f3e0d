// Node's ESM loader refuses extension-less relative imports, which some of Headless' dependencies (dayjs' ESM
// build) use because they are written for bundlers. This hook retries such an import with `.js` (or
// `/index.js`), as a bundler would. Usage: node --import ./esm_resolve.mjs script.mjs
import {register} from 'node:module';

if (import.meta.url.endsWith('?hook')) {
  // Runs in the loader thread.
} else {
  register(`${import.meta.url}?hook`);
}

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    const missing = error.code === 'ERR_MODULE_NOT_FOUND' || error.code === 'ERR_UNSUPPORTED_DIR_IMPORT';
    if (missing && specifier.startsWith('.')) {
      for (const suffix of ['.js', '/index.js']) {
        try {
          return await next(specifier + suffix, context);
        } catch {
          // try the next form
        }
      }
    }
    throw error;
  }
}
