// auth.js -- credentials: which ingest routes need which secret (closed
// while it is unset, unless explicitly opted in), constant-time comparison of
// secrets, and Standard Webhooks signatures for pushes to synccf.

const enc = new TextEncoder();

// Equal strings, compared in constant time (the length is not secret).
export function safeEqual(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = enc.encode(a), y = enc.encode(b);
  if (x.length !== y.length) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}

export function bearer(request) {
  const h = request.headers.get('authorization') || '';
  return /^bearer /i.test(h) ? h.slice(7) : null;
}

export function checkBearer(request, token) {
  return !!token && safeEqual(bearer(request) ?? '', token);
}

export function checkNotify(request, env) {
  const s = env.NOTIFY_SECRET;
  return !!s && safeEqual(request.headers.get('cf-webhook-auth') ?? '', s);
}

// The ingest routes, by what they receive, and the secret each needs. A
// route whose secret is unset is closed (401 naming the secret) unless
// ALLOW_UNAUTHENTICATED (a comma-separated list of these names) keeps it
// open, e.g. while moving Cloudflare's destinations over from xplat's Worker.
export const INGEST = {
  notifications: { secret: 'NOTIFY_SECRET', paths: '/hooks/notifications, /webhook/pages, /webhook/alert' },
  logpush: { secret: 'HOOK_TOKEN', paths: '/hooks/logpush/<dataset>, /logpush' },
  generic: { secret: 'HOOK_TOKEN', paths: '/hooks/generic/<name>' },
};

function optIns(env) {
  return String(env.ALLOW_UNAUTHENTICATED ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
}

// What each ingest route requires: 'secret' (its secret is set), 'open'
// (unset, and opted in), 'closed' (unset); and the opt-in names that open
// nothing (unknown, or the route's secret is set).
export function authState(env) {
  const asked = optIns(env);
  const routes = {};
  for (const [name, { secret }] of Object.entries(INGEST))
    routes[name] = env[secret] ? 'secret' : asked.includes(name) ? 'open' : 'closed';
  return {
    routes,
    unauthenticated: Object.keys(routes).filter((n) => routes[n] === 'open'),
    ignored: [...new Set(asked.filter((n) => routes[n] !== 'open'))],
  };
}

// Checks a request to ingest route `name`. The credentials it may carry:
// its secret, and for xplat's /webhook/* routes (xplat: true) also the
// HOOK_TOKEN bearer. Returns {open: true} when the route is open (nothing
// checked), {open: false} when a credential matched; otherwise throws the
// reason (for a closed route, the secret to set).
export function authorize(request, env, name, { xplat = false } = {}) {
  const { secret, paths } = INGEST[name];
  const ok = secret === 'NOTIFY_SECRET'
    ? checkNotify(request, env) || (xplat && checkBearer(request, env.HOOK_TOKEN))
    : checkBearer(request, env[secret]);
  if (ok) return { open: false };
  const state = authState(env).routes[name];
  if (state === 'open') return { open: true };
  if (state === 'closed' && !(xplat && env.HOOK_TOKEN))
    throw new Error(`${paths}: closed until ${secret} is set (wrangler secret put ${secret}); ALLOW_UNAUTHENTICATED=${name} keeps it open without one`);
  throw new Error('missing or wrong credentials');
}

function b64decode(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64encode(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// Standard Webhooks: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>, the
// key being the base64 after "whsec_".
export async function signWebhook(secret, id, timestamp, body) {
  if (!secret?.startsWith('whsec_')) throw new Error('SYNC_SECRET must be whsec_ followed by base64');
  const key = await crypto.subtle.importKey('raw', b64decode(secret.slice(6)), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, enc.encode(`${id}.${timestamp}.${body}`));
  return `v1,${b64encode(new Uint8Array(mac))}`;
}
