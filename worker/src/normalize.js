// normalize.js -- Cloudflare's formats to the normalized event (docs/events.md).
//
// The twin of lib/normalize.c: every rule here is the C side's, and the shared
// vectors in tests/vectors/ prove both produce the same bytes. Change both,
// and the vectors, or neither. Runs in workerd and, for the vectors, the same
// module is loaded into a test Worker.

const enc = new TextEncoder();
const MAX_MS = 253402300799999; // 9999-12-31T23:59:59.999Z

// H(x): the first 32 hex digits of SHA-256 over the concatenated parts
// (strings are UTF-8 encoded; Uint8Arrays are hashed as they are).
export async function hashHex32(...parts) {
  const bytes = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of bytes) { all.set(b, o); o += b.length; }
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return [...d.slice(0, 16)].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export function formatMs(ms) {
  const clamped = Math.min(Math.max(ms, 0), MAX_MS);
  const iso = new Date(clamped).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return clamped % 1000 ? iso : iso.slice(0, 19) + 'Z';
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const MDAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function parseRfc3339(s) {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > MDAYS[mo - 1] || h > 23 || mi > 59 || sec > 59) return null;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (mo === 2 && d === 29 && !leap) return null;
  const frac = m[7] ? Number((m[7].slice(1) + '00').slice(0, 3)) : 0;
  let off = 0;
  if (m[8] !== 'Z' && m[8] !== 'z') {
    const oh = Number(m[8].slice(1, 3)), om = Number(m[8].slice(4, 6));
    if (oh > 23 || om > 59) return null;
    off = (oh * 60 + om) * (m[8][0] === '+' ? 1 : -1);
  }
  const t = Date.UTC(y, mo - 1, d, h, mi, sec) + frac - off * 60000;
  return t < 0 || t > MAX_MS ? null : t;
}

// The event model's reading of a time value (docs/events.md#time).
export function timeFrom(v) {
  let t;
  if (typeof v === 'string') return parseRfc3339(v);
  if (JSON.isRawJSON(v)) {
    // An integer past 2^53 (parseJson): read exactly, as the C side does.
    const i = BigInt(v.rawJSON);
    if (i < 0n) return null;
    t = i < 100000000000000000n ? i / 1000n : i / 1000000n;
    return t > BigInt(MAX_MS) ? null : Number(t);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  if (Number.isInteger(v)) {
    if (v < 0) return null;
    if (v < 1e11) t = v * 1000;
    else if (v < 1e14) t = v;
    else if (v < 1e17) t = Math.floor(v / 1000);
    else t = Math.floor(v / 1e6);
  } else {
    if (!(v >= 0 && v < 1e11)) return null;
    t = Math.floor(v * 1000);
  }
  return t > MAX_MS ? null : t;
}

// JSON.parse that keeps integers past 2^53 exact. As JavaScript numbers they
// lose digits -- Logpush's default unix-nano timestamps among them -- while
// jansson keeps every 64-bit integer: the event's data and time would differ
// between the two sides. Such an integer becomes JSON.rawJSON of its source
// text, which JSON.stringify writes back digit for digit and timeFrom reads
// exactly.
export function parseJson(text) {
  return JSON.parse(text, (k, v, ctx) =>
    typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v) && /^-?\d+$/.test(ctx?.source ?? '')
      ? JSON.rawJSON(ctx.source) : v);
}

export function buildEvent({ id, source, type, subject, timeMs, account, via, receivedMs, data }) {
  const received = formatMs(receivedMs);
  const e = { specversion: '1.0', id, source, type };
  if (subject != null) e.subject = subject;
  e.time = timeMs == null ? received : formatMs(timeMs);
  e.datacontenttype = 'application/json';
  if (account != null) e.cfaccount = account;
  e.synccfvia = via;
  e.synccfreceived = received;
  e.data = data;
  return e;
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const strOr = (o, k) => (typeof o?.[k] === 'string' ? o[k] : '');
// A subject or account: a non-empty string of at most 256 bytes.
function shortStr(o, k) {
  const v = o?.[k];
  if (typeof v !== 'string' || v.length === 0 || enc.encode(v).length > 256) return null;
  return v;
}
// Lowercased, each byte outside [a-z0-9_] becomes '_', at most 64 bytes:
// byte-wise, exactly as the C side does it.
function sanitize(s) {
  let out = '';
  for (let c of enc.encode(s).slice(0, 64)) {
    if (c >= 65 && c <= 90) c += 32;
    const ok = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
    out += ok ? String.fromCharCode(c) : '_';
  }
  return out;
}

export const validDataset = (s) => /^[a-z0-9_]{1,64}$/.test(s);
export const validHookName = (s) => /^[a-z0-9_-]{1,64}$/.test(s);

function notificationKey(b) {
  const ts = Number.isInteger(b.ts) ? String(b.ts) : '';
  return [strOr(b, 'alert_type'), strOr(b, 'policy_id'), strOr(b, 'alert_correlation_id'),
    strOr(b, 'alert_event'), ts, strOr(b, 'name'), strOr(b, 'text')].join('\n');
}

export async function normNotification(body, { via, receivedMs }) {
  if (!isObj(body)) return null;
  const data = isObj(body.data) ? body.data : null;
  const account = shortStr(body, 'account_id');
  const timeMs = 'ts' in body ? timeFrom(body.ts) : null;
  if (body.alert_type === 'pages_event_alert') {
    const evn = data ? strOr(data, 'event') : '';
    const pfx = 'EVENT_DEPLOYMENT_';
    const status = evn.startsWith(pfx) && evn.length > pfx.length ? sanitize(evn.slice(pfx.length)) : 'unknown';
    const subject = (data && shortStr(data, 'project_name')) ?? (data && shortStr(data, 'project_id')) ?? null;
    const dep = data ? strOr(data, 'deployment_id') : '';
    const id = /^[A-Za-z0-9_-]{1,64}$/.test(dep)
      ? `pages-${dep}-${status}` : `notify-${await hashHex32(notificationKey(body))}`;
    return buildEvent({ id, source: '/cloudflare/pages', type: `com.cloudflare.pages.deployment.${status}`,
      subject, timeMs, account, via, receivedMs, data: body });
  }
  const t = typeof body.alert_type === 'string' && body.alert_type.length ? sanitize(body.alert_type) : 'test';
  return buildEvent({ id: `notify-${await hashHex32(notificationKey(body))}`, source: '/cloudflare/notifications',
    type: `com.cloudflare.notification.${t}`, subject: data ? shortStr(data, 'zone_name') : null,
    timeMs, account, via, receivedMs, data: body });
}

// raw: the request body's bytes (Uint8Array), which feed the id.
export async function normGeneric(name, raw, body, { via, receivedMs }) {
  if (!isObj(body)) return null;
  const bid = body.id;
  const key = typeof bid === 'string' && bid.length >= 1 && enc.encode(bid).length <= 128 ? bid : raw;
  const id = `hook-${await hashHex32(name, '\n', key)}`;
  const subject = shortStr(body, 'subject') ?? shortStr(body, 'project');
  const tv = body['time' in body ? 'time' : 'timestamp'];
  return buildEvent({ id, source: `/synccf/hooks/${name}`, type: `dev.synccf.hook.${name}`, subject,
    timeMs: tv === undefined ? null : timeFrom(tv), account: null, via, receivedMs, data: body });
}

const TIME_FIELDS = ['EdgeStartTimestamp', 'EventTimestampMs', 'Datetime', 'Timestamp', 'When'];
const SUBJECT_FIELDS = ['ZoneName', 'ScriptName', 'ClientRequestHost'];
const dec = new TextDecoder('utf-8', { fatal: true });

// One Logpush line (bytes, without terminator): {event} for a record,
// {skip: true} for Logpush's destination check, {error} for a bad line.
export async function normLogpushLine(dataset, line, { via, receivedMs }) {
  let rec;
  try { rec = parseJson(dec.decode(line)); } catch (e) { return { error: String(e.message || e) }; }
  if (!isObj(rec)) return { error: 'not a JSON object' };
  const keys = Object.keys(rec);
  if (keys.length === 1 && rec.content === 'tests') return { skip: true };
  const id = `lp-${await hashHex32(dataset, '\n', line)}`;
  let timeMs = null;
  for (const f of TIME_FIELDS) if (f in rec) { timeMs = timeFrom(rec[f]); break; }
  let subject = null;
  for (const f of SUBJECT_FIELDS) if ((subject = shortStr(rec, f)) !== null) break;
  return { event: buildEvent({ id, source: `/cloudflare/logpush/${dataset}`, type: `com.cloudflare.logpush.${dataset}`,
    subject, timeMs, account: null, via, receivedMs, data: rec }) };
}

// Splits a byte stream into lines (without \n or \r\n), skipping blank ones,
// and bounding both the total and each line. onLine may be async.
export async function readLines(stream, { maxTotal, maxLine }, onLine) {
  const reader = stream.getReader();
  let pending = new Uint8Array(0);
  let total = 0;
  const emit = async (bytes) => {
    let n = bytes.length;
    if (n && bytes[n - 1] === 13) n--;
    let i = 0;
    while (i < n && (bytes[i] === 32 || bytes[i] === 9)) i++;
    if (i < n) await onLine(bytes.subarray(0, n));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxTotal) { await reader.cancel(); throw Object.assign(new Error('batch larger than the decompressed size limit'), { status: 413 }); }
    let buf = pending.length ? concat(pending, value) : value;
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      await emit(buf.subarray(start, nl));
      start = nl + 1;
    }
    pending = buf.slice(start);
    if (pending.length > maxLine) { await reader.cancel(); throw Object.assign(new Error('record longer than the line limit'), { status: 413 }); }
  }
  if (pending.length) await emit(pending);
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// A Logpush body: gzip is recognised by its magic bytes, not by headers.
export async function logpushStream(body) {
  const reader = body.getReader();
  const first = [];
  let have = 0;
  while (have < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    first.push(value);
    have += value.length;
  }
  const head = first.length === 1 ? first[0] : first.reduce((a, b) => concat(a, b), new Uint8Array(0));
  const rest = new ReadableStream({
    start(c) { if (head.length) c.enqueue(head); },
    async pull(c) {
      const { value, done } = await reader.read();
      if (done) c.close(); else c.enqueue(value);
    },
    cancel(r) { return reader.cancel(r); },
  });
  const gz = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  return gz ? rest.pipeThrough(new DecompressionStream('gzip')) : rest;
}

// Normalizes a whole Logpush body; returns { events, rejected }.
export async function normLogpush(dataset, body, opts, limits = { maxTotal: 1 << 30, maxLine: 1 << 20 }) {
  const events = [];
  let rejected = 0;
  const stream = await logpushStream(body);
  await readLines(stream, limits, async (line) => {
    const r = await normLogpushLine(dataset, line, opts);
    if (r.event) events.push(r.event);
    else if (r.error) rejected++;
  });
  return { events, rejected };
}

// The CloudEvents 1.0 rules an event must meet to be stored or accepted from
// elsewhere: those the cloudevents SDK enforces in strict mode, and synccf's
// own (RFC 3339 time, bounded id and subject, a documented synccfvia). The
// twin of event_check (lib/event.c), message for message; the vectors
// tests/vectors/cloudevents-*.json prove the two agree. Returns null when the
// event meets them, else a message naming the attribute.
const URI_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:/?#@[\]%]*$/;
export function validUri(s, absolute) {
  if (typeof s !== 'string' || s.length === 0 || !URI_CHARS.test(s)) return false;
  // A scheme is what precedes the first ':' when no '/', '?' or '#' comes
  // before it; a relative reference cannot have a ':' there.
  const m = /^[^:/?#]*/.exec(s)[0].length;
  let start = 0;
  if (s[m] === ':') {
    if (!/^[A-Za-z][A-Za-z0-9+\-.]*$/.test(s.slice(0, m))) return false;
    start = m + 1;
  } else if (absolute) return false;
  // '[' and ']' only in the authority (an IPv6 host); '#' once.
  let authEnd = start;
  if (s.startsWith('//', start)) {
    const r = /^[^/?#]*/.exec(s.slice(start + 2))[0].length;
    authEnd = start + 2 + r;
  }
  let frag = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) return false;
      i += 2;
      continue;
    }
    if ((c === '[' || c === ']') && (i < start + 2 || i >= authEnd)) return false;
    if (c === '#' && frag++) return false;
  }
  return true;
}

const bytes = (s) => enc.encode(s).length;
const nonEmpty = (v, max) => typeof v === 'string' && v.length > 0 && bytes(v) <= max;
const CONTEXT = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema', 'data', 'data_base64']);
const VIAS = new Set(['worker', 'tunnel', 'queue', 'poll']);
// CloudEvents' Integer is 32-bit signed.
const ceInteger = (v) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;

export function checkEvent(ev) {
  if (!isObj(ev) || JSON.isRawJSON(ev)) return 'event is not a JSON object';
  const has = (k) => Object.hasOwn(ev, k);
  if (ev.specversion !== '1.0') return 'specversion must be "1.0"';
  if (!nonEmpty(ev.id, 256)) return 'id must be a non-empty string of at most 256 bytes';
  if (!nonEmpty(ev.source, 1024) || !validUri(ev.source, false)) return 'source must be a URI-reference of at most 1024 bytes';
  if (!nonEmpty(ev.type, 256)) return 'type must be a non-empty string of at most 256 bytes';
  if (typeof ev.time !== 'string' || parseRfc3339(ev.time) === null) return 'time must be an RFC 3339 string';
  if (has('subject') && !nonEmpty(ev.subject, 256)) return 'subject must be a non-empty string of at most 256 bytes';
  if (has('datacontenttype') && !nonEmpty(ev.datacontenttype, 256)) return 'datacontenttype must be a non-empty string of at most 256 bytes';
  if (has('dataschema') && (!nonEmpty(ev.dataschema, 1024) || !validUri(ev.dataschema, true))) return 'dataschema must be an absolute URI of at most 1024 bytes';
  if (has('data_base64') && (typeof ev.data_base64 !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(ev.data_base64)))
    return 'data_base64 must be a base64 string';
  if (has('data_base64') && has('data')) return 'data and data_base64 must not both be present';
  if (has('schemaurl')) return 'schemaurl is not a CloudEvents 1.0 attribute (use dataschema)';
  for (const k of Object.keys(ev)) {
    if (k === 'data_base64' || /^[a-z0-9]{1,20}$/.test(k)) continue;
    // Named when it can be shown as it is (printable ASCII, short).
    if (/^[!#-[\]-~]{1,40}$/.test(k)) return `attribute name ${k} is not 1-20 lowercase letters or digits`;
    return 'attribute names must be 1-20 lowercase letters or digits';
  }
  for (const [k, v] of Object.entries(ev)) {
    if (CONTEXT.has(k) || typeof v === 'string' || typeof v === 'boolean' || ceInteger(v)) continue;
    return `extension attribute ${k} must be a string, boolean or 32-bit integer`;
  }
  if (has('synccfvia') && !VIAS.has(ev.synccfvia)) return 'synccfvia must be worker, tunnel, queue or poll';
  if (has('synccfreceived') && (typeof ev.synccfreceived !== 'string' || parseRfc3339(ev.synccfreceived) === null))
    return 'synccfreceived must be an RFC 3339 string';
  return null;
}

// An event accepted from elsewhere, as event_accept (lib/event.c) stores it:
// checked, then a missing synccfvia / synccfreceived filled in. Returns the
// refusal's message, or null.
export function acceptEvent(ev, { via, receivedMs }) {
  const why = checkEvent(ev);
  if (why) return why;
  if (!Object.hasOwn(ev, 'synccfvia')) ev.synccfvia = via;
  if (!Object.hasOwn(ev, 'synccfreceived')) ev.synccfreceived = formatMs(receivedMs);
  return null;
}
