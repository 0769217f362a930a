// The JSON API: every URL is relative to the page (it is served at <mount>/), every call carries
// the admin's credentials (the browser's: the host app's session cookie, or the sign-in cookie of
// the CLI's inspectors), and a state-changing call also the CSRF token from GET api/session.

let csrfToken = '';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
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
