// Checks against Intake itself: search and the logs API, polled until the expected state shows.
const base = process.env.PUSH_URL;
const headers = {Authorization: `Bearer ${process.env.INTAKE_KEY}`, 'Content-Type': 'application/json'};
const org = process.env.INTAKE_ORG;

async function search(body) {
  // The master key with viewAllContent: every item, whatever its permissions.
  const response = await fetch(`${base}/rest/search/v2?organizationId=${org}`, {method: 'POST', headers, body: JSON.stringify({viewAllContent: true, ...body})});
  if (!response.ok) throw new Error(`search answered ${response.status}: ${await response.text()}`);
  return response.json();
}

async function logs(documentId, filters = {}) {
  const query = documentId ? `?documentId=${encodeURIComponent(documentId)}&perPage=1000` : '?perPage=1000';
  const response = await fetch(`${base}/logs/v1/organizations/${org}${query}`, {method: 'POST', headers, body: JSON.stringify(filters)});
  if (!response.ok) throw new Error(`logs answered ${response.status}: ${await response.text()}`);
  return (await response.json()).documentLogEntries;
}

async function eventually(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** Creates an API key with the master key, through the Platform API; returns its value. */
async function createKey(displayName, privileges) {
  const response = await fetch(`${base}/rest/organizations/${org}/apikeys`, {method: 'POST', headers, body: JSON.stringify({displayName, privileges})});
  if (response.status !== 201) throw new Error(`creating a key answered ${response.status}: ${await response.text()}`);
  return (await response.json()).value;
}

async function fields() {
  const response = await fetch(`${base}/rest/organizations/${org}/indexes/page/fields?page=0&perPage=1000`, {headers});
  return (await response.json()).items;
}

/** Adds a fault rule to the organization (master key); returns its id. */
async function fault(rule) {
  const response = await fetch(`${base}/rest/organizations/${org}/faults`, {method: 'POST', headers, body: JSON.stringify(rule)});
  if (response.status !== 201) throw new Error(`adding a fault rule answered ${response.status}: ${await response.text()}`);
  return (await response.json()).id;
}

/** A search token for an e-mail user (master key). */
async function searchToken(user) {
  const body = JSON.stringify({userIds: [{name: user, provider: 'Email Security Provider', type: 'User'}]});
  const response = await fetch(`${base}/rest/search/v2/token?organizationId=${org}`, {method: 'POST', headers, body});
  if (response.status !== 200) throw new Error(`a search token answered ${response.status}: ${await response.text()}`);
  return (await response.json()).token;
}

/** A search as the user of a search token. */
async function searchAs(token, body) {
  const response = await fetch(`${base}/rest/search/v2?organizationId=${org}`, {method: 'POST', headers: {...headers, Authorization: `Bearer ${token}`}, body: JSON.stringify(body)});
  if (!response.ok) throw new Error(`search answered ${response.status}: ${await response.text()}`);
  return response.json();
}

module.exports = {search, logs, eventually, createKey, fields, fault, searchToken, searchAs};
