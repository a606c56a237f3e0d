// Sends the Node SDK's requests for Coveo's hosts to Intake instead (the SDK has no base URL option).
// Usage: PUSH_URL=http://127.0.0.1:8080 node --require ./coveo_redirect.cjs script.cjs
const realFetch = globalThis.fetch;
const COVEO = /^https:\/\/(api|platform)[a-z]*(-[a-z]+)?\.cloud\.coveo\.com(?=[/?]|$)/;
globalThis.fetch = (url, init) =>
  realFetch(typeof url === 'string' ? url.replace(COVEO, process.env.PUSH_URL) : url, init);
