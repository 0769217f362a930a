// The JSON API: every URL is relative to the page (it is served at <mount>/), every call carries
// the admin's credentials, and a state-changing call also the CSRF token from GET api/session.

const TOKEN_KEY = 'deltasyncAdminToken';
let csrfToken = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: cookies or the server's own authentication still apply
  }
}

/** Moves `token=...` from the hash into sessionStorage, and out of the URL and the history. */
export function takeTokenFromHash() {
  const hash = location.hash.slice(1);
  const match = /(^|[&?])token=([^&]*)/.exec(hash);
  if (!match) return;
  let token = match[2];
  try {
    token = decodeURIComponent(token);
  } catch {}
  if (token) storage()?.setItem(TOKEN_KEY, token);
  const rest = (hash.slice(0, match.index) + hash.slice(match.index + match[0].length)).replace(/[?&]$/, '');
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

export function setCsrfToken(token) {
  csrfToken = String(token ?? '');
}

/** 'api/users' + {after, limit}: empty values are left out. */
export function url(path, query) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) if (value != null && value !== '') search.set(key, value);
  const tail = search.toString();
  return tail ? `${path}?${tail}` : path;
}

/** GET path, or POST body as JSON when body is given. Throws ApiError. */
export async function api(path, body) {
  const headers = { Accept: 'application/json' };
  const token = storage()?.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { credentials: 'same-origin', headers, cache: 'no-store' };
  if (body !== undefined) {
    init.method = 'POST';
    headers['Content-Type'] = 'application/json';
    headers['X-Deltasync-Csrf'] = csrfToken;
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `The inspector did not answer (${error.message})`);
  }
  let value = null;
  try {
    value = await response.json();
  } catch {}
  if (!response.ok || value === null || typeof value !== 'object') {
    const error = (value && value.error) || {};
    throw new ApiError(response.status, String(error.code ?? `HTTP_${response.status}`), String(error.message ?? (response.statusText || 'Not a JSON answer')));
  }
  return value;
}

/** The segments of an API path, each percent-encoded: seg('users', id, 'devices'). */
export const seg = (...parts) => `api/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;
