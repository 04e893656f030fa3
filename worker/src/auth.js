// auth.js -- credentials: constant-time comparison of secrets, and Standard
// Webhooks signatures for pushes to synccf.

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

// A configured secret must match; an unset one leaves the route open (the
// deployment guide says to set them all).
export function checkBearer(request, token) {
  return !token || safeEqual(bearer(request) ?? '', token);
}

export function checkNotify(request, env) {
  const s = env.NOTIFY_SECRET;
  return !s || safeEqual(request.headers.get('cf-webhook-auth') ?? '', s);
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
