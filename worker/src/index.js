// index.js -- the synccf edge Worker's routes: Cloudflare's formats in (with
// the same authentication as `synccf receive`, closed while a secret is
// unset unless ALLOW_UNAUTHENTICATED opts a route in), xplat's old routes for a
// drop-in swap, and the pull API out. Every event goes into the EventLog
// Durable Object, and Cloudflare is answered only once it is stored there.

import { checkBearer, authorize, authState, INGEST } from './auth.js';
import {
  normNotification, normGeneric, normLogpush, parseJson, validDataset, validHookName, checkEvent,
} from './normalize.js';

export { EventLog } from './eventlog.js';

const num = (v, d) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? d : Number(v));

class HttpError extends Error {
  constructor(status, reason, message) { super(message); this.status = status; this.reason = reason; }
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const log = (env) => env.EVENT_LOG.get(env.EVENT_LOG.idFromName('log'));

// The body, at most max bytes (checked as it streams, not only by header).
async function readBody(request, max) {
  const declared = Number(request.headers.get('content-length') || 0);
  if (declared > max) throw new HttpError(413, 'too_large', 'body larger than the configured limit');
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) { await reader.cancel(); throw new HttpError(413, 'too_large', 'body larger than the configured limit'); }
    parts.push(value);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function requireJsonType(request) {
  const ct = (request.headers.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (ct && ct !== 'application/json' && !ct.endsWith('+json'))
    throw new HttpError(415, 'unsupported_media_type', 'expected a JSON content type');
}

async function jsonBody(request, env) {
  requireJsonType(request);
  const raw = await readBody(request, num(env.MAX_BODY, 1 << 20));
  try {
    return { raw, body: parseJson(new TextDecoder('utf-8', { fatal: true }).decode(raw)) };
  } catch (e) {
    throw new HttpError(400, 'malformed', `malformed JSON: ${e.message}`);
  }
}

async function store(env, events) {
  // What the Worker stores meets the receiver's checks (event_check), so a
  // push of it is never refused.
  for (const e of events) {
    const why = checkEvent(e);
    if (why) throw new HttpError(400, 'malformed', `not a valid CloudEvent: ${why}`);
  }
  const stub = log(env);
  let accepted = 0, duplicates = 0;
  // Big Logpush batches go in slices: each append is one transaction.
  for (let i = 0; i < events.length; i += 500) {
    const r = await stub.append(events.slice(i, i + 500).map((e) => ({ id: e.id, body: JSON.stringify(e) })));
    accepted += r.accepted;
    duplicates += r.duplicates;
  }
  return { accepted, duplicates };
}

const opts = () => ({ via: 'worker', receivedMs: Date.now() });

async function notification(request, env) {
  const { body } = await jsonBody(request, env);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'malformed', 'a notification must be a JSON object');
  return json(200, await store(env, [await normNotification(body, opts())]));
}

async function logpush(request, env, dataset) {
  if (!validDataset(dataset)) throw new HttpError(404, 'not_found', 'no such route');
  if (!request.body) return json(200, { accepted: 0, duplicates: 0, rejected: 0 });
  let r;
  try {
    r = await normLogpush(dataset, request.body, opts(),
      { maxTotal: num(env.MAX_DECOMPRESSED, 64 << 20), maxLine: num(env.MAX_LINE, 1 << 20) });
  } catch (e) {
    if (e.status) throw new HttpError(e.status, 'too_large', e.message);
    throw new HttpError(400, 'malformed', `not a Logpush batch: ${e.message}`);
  }
  return json(200, { ...(await store(env, r.events)), rejected: r.rejected });
}

async function generic(request, env, name) {
  if (!validHookName(name)) throw new HttpError(404, 'not_found', 'no such route');
  const { raw, body } = await jsonBody(request, env);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'malformed', 'a hook body must be a JSON object');
  return json(200, await store(env, [await normGeneric(name, raw, body, opts())]));
}

// The pull API hands out every event the log holds (alerts, Logpush records
// with client addresses): closed until PULL_TOKEN is set, with no opt-out.
function needPull(request, env) {
  if (!env.PULL_TOKEN) throw new HttpError(401, 'unauthorized', 'the pull API is closed until PULL_TOKEN is set');
  if (!checkBearer(request, env.PULL_TOKEN)) throw new HttpError(401, 'unauthorized', 'missing or wrong credentials');
}

// The ingest routes here are the receiver's too: lib/routes.h (enum
// ingest_route) and lib/routes.c hold the same map on the daemon's side; a
// route added on one side belongs on both.
// seen.open: the ingest route this request came to is open (its secret
// unset, ALLOW_UNAUTHENTICATED naming it): its log line says so.
async function route(request, env, seen) {
  const url = new URL(request.url);
  const p = url.pathname;
  const m = request.method;
  const post = (ok) => {
    if (m !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST');
    if (!ok) throw new HttpError(401, 'unauthorized', 'missing or wrong credentials');
  };
  // An ingest route: closed while its secret is unset (see auth.js).
  const ingest = (name, xplat) => {
    post(true);
    try {
      if (authorize(request, env, name, { xplat }).open) seen.open = name;
    } catch (e) {
      throw new HttpError(401, 'unauthorized', e.message);
    }
  };

  if (p === '/healthz' || p === '/health') {
    if (m !== 'GET' && m !== 'HEAD') throw new HttpError(405, 'method_not_allowed', 'use GET');
    return json(200, { ok: true, unauthenticated: authState(env).unauthenticated });
  }
  if (p === '/hooks/notifications') { ingest('notifications'); return notification(request, env); }
  // xplat's routes: the same bodies Cloudflare sent its Worker, now authenticated
  // (either secret), and acknowledged only once stored.
  if (p === '/webhook/pages' || p === '/webhook/alert') { ingest('notifications', true); return notification(request, env); }
  if (p.startsWith('/hooks/logpush/')) { ingest('logpush'); return logpush(request, env, p.slice(15)); }
  if (p === '/logpush') { ingest('logpush'); return logpush(request, env, url.searchParams.get('dataset') || ''); }
  if (p.startsWith('/hooks/generic/')) { ingest('generic'); return generic(request, env, p.slice(15)); }

  if (p === '/v1/events') {
    if (m !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET');
    needPull(request, env);
    const after = Number(url.searchParams.get('after') ?? 0);
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 100), 1), 1000);
    if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit)) throw new HttpError(400, 'malformed', 'after and limit must be whole numbers');
    return new Response(await log(env).list(after, limit), { headers: { 'content-type': 'application/json' } });
  }
  if (p === '/v1/stream') {
    if (m !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET');
    needPull(request, env);
    return log(env).fetch(request);
  }
  if (p === '/v1/status') {
    if (m !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET');
    needPull(request, env);
    return json(200, { ...(await log(env).status()), auth: authState(env) });
  }
  if (p === '/v1/push/retry') {
    post(true);
    needPull(request, env);
    return json(200, await log(env).retryPush());
  }
  throw new HttpError(404, 'not_found', 'no such route');
}

export default {
  async fetch(request, env) {
    const seen = { open: null };
    // Requests to an open route are logged, each with the route's name.
    const flag = () => (seen.open ? { unauthenticated: seen.open, allowedBy: 'ALLOW_UNAUTHENTICATED', set: INGEST[seen.open].secret } : {});
    try {
      const res = await route(request, env, seen);
      if (seen.open)
        console.warn(JSON.stringify({ msg: 'request accepted without authentication', status: res.status, path: new URL(request.url).pathname, ...flag() }));
      return res;
    } catch (e) {
      if (e instanceof HttpError) {
        console.warn(JSON.stringify({ msg: 'request rejected', status: e.status, reason: e.reason, detail: e.message, path: new URL(request.url).pathname, ...flag() }));
        return json(e.status, { error: e.message, reason: e.reason });
      }
      console.error(JSON.stringify({ msg: 'internal error', error: String(e && e.stack || e), ...flag() }));
      return json(503, { error: 'could not store the event; retry later', reason: 'store_unavailable' }, { 'retry-after': '1' });
    }
  },
};
