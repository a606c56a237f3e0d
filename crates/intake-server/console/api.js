// Calls to Intake's API with the signed-in key. The key lives in this tab's sessionStorage only: never in a URL,
// a cookie or localStorage, and it is gone when the tab closes.

const KEY = 'intake.key';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() { sessionStorage.removeItem(KEY); },
};

/** An error answer of the API: its status, errorCode, message and resolution, as Intake sent them. */
export class ApiFailure extends Error {
  constructor(status, body, requestId) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.errorCode || `HTTP_${status}`;
    this.resolution = body?.resolution || '';
    this.requestId = body?.requestId || requestId || '';
    this.body = body;
  }
}

/** Calls the API: `api('POST', '/rest/search/v2', {body, query, token})`. JSON in, JSON (or text) out. */
export async function api(method, path, { body, query, token, form } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { Accept: 'application/json' };
  const bearer = token || session.key;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(form).toString();
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: 'omit', cache: 'no-store' });
  const type = response.headers.get('content-type') || '';
  const data = response.status === 204 ? null
    : type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) throw new ApiFailure(response.status, typeof data === 'object' ? data : null, response.headers.get('x-request-id'));
  return data;
}

/** Whether the signed-in key holds a privilege in an organization (`PLATFORM:LOGS:VIEW`). */
export async function holds(org, privilege) {
  const [owner, targetDomain, type, targetId] = privilege.split(':');
  const requestedPrivilege = { owner, targetDomain, ...(type ? { type } : {}), targetId: targetId || '*' };
  try {
    const answer = await api('POST', '/rest/privilege/evaluate', { body: { organizationId: org, requestedPrivilege } });
    return Boolean(answer?.approved);
  } catch {
    return false;
  }
}

/** The organization's path under `/rest/organizations/`. */
export const orgPath = (org, rest = '') => `/rest/organizations/${encodeURIComponent(org)}${rest}`;
