// Soak: a steady mixed load on `synccf receive` with retention active, for
// SOAK_MINUTES (default 30). Each minute it reports the daemon's RSS, the
// store's size (state.db and its WAL), p50/p99 of the signed pushes, and
// errors; once the retention bound is reached these should stay flat. At the
// end it checks that every acknowledged event is either in the store or was
// pruned by a rule that names it.
//
//   SOAK_MINUTES=3 node bench/soak.mjs        (bench/soak.sh builds first)
//
// Load (paced, not as fast as possible): signed CloudEvent batches to
// /v1/events (PUSH_RPS requests/s of 10 events, every one firing an exec
// handler), Cloudflare notifications (NOTIFY_RPS/s) and gzip Logpush batches
// (LOGPUSH_RECORDS records each second). Retention: Logpush records and
// notifications MAX_AGE (default 60s), pushed events PUSH_KEEP (default
// 5,000), pruned ids remembered DEDUPE (default 2m) -- short, so that the
// bound is reached within the run.
//
// The end check: for each pushed event (known ids), stored, or its id's hash
// in ids marked pruned (or, past the dedupe window, counted by its rule);
// for Logpush records and notifications (ids made by synccf), acknowledged =
// stored + pruned by their rule, per rule.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync, statSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.SYNCCF_BIN || join(ROOT, 'build', 'synccf');
const MINUTES = Number(process.env.SOAK_MINUTES || 30);
const PUSH_RPS = Number(process.env.PUSH_RPS || 20);
const NOTIFY_RPS = Number(process.env.NOTIFY_RPS || 10);
const LOGPUSH_RECORDS = Number(process.env.LOGPUSH_RECORDS || 1000);
const MAX_AGE = process.env.MAX_AGE || '60s';
const PUSH_KEEP = Number(process.env.PUSH_KEEP || 5000);
const DEDUPE = process.env.DEDUPE || '2m';
const DEDUPE_MS = Number(DEDUPE.replace(/m$/, '')) * 60000;

const dir = mkdtempSync(join(tmpdir(), 'synccf-soak-'));
const state = join(dir, 'state');
const secret = 'whsec_' + randomBytes(24).toString('base64');
// RETENTION=0: the same load with no retention section, for comparison.
const RETENTION = process.env.RETENTION !== '0';
const retention = `retention:
  dedupe_window: ${DEDUPE}
  rules:
    - type: "com.cloudflare.logpush.*"
      max_age: ${MAX_AGE}
    - type: "com.cloudflare.notification.*"
      max_age: ${MAX_AGE}
    - type: "dev.soak.push"
      max_events: ${PUSH_KEEP}
`;
writeFileSync(join(dir, 'synccf.yaml'), (RETENTION ? retention : '') + `handlers:
  - name: touch
    match: { type: dev.soak.push }
    exec: { argv: [/bin/true] }
`);

const daemon = spawn(BIN, ['--state', state, '--config', join(dir, 'synccf.yaml'), '--log-level', 'info', 'receive',
  '--listen', '127.0.0.1:0', '--max-logpush-body', '64M'], {
  env: { PATH: process.env.PATH, SYNCCF_PUSH_SECRET: secret }, stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
const port = await new Promise((resolve, reject) => {
  daemon.stderr.on('data', (d) => {
    if (log.length < 1 << 16) log += d;
    const m = /msg=listening .*port=(\d+)/.exec(log);
    if (m) resolve(Number(m[1]));
  });
  daemon.on('exit', (c) => reject(new Error(`synccf exited ${c}:\n${log}`)));
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// A request sent on a kept-alive connection just as the daemon closes it for
// idling (limits.timeout) fails with ECONNRESET before anything was read;
// HTTP lets a client send it again (RFC 9112, 9.3.1), and every request here
// is idempotent (events are deduplicated by id). Such retries are counted
// and reported, not hidden; every other failure is an error.
let retried = 0;
const errorKinds = new Map();
function noteError(kind) { minute.errors++; errorKinds.set(kind, (errorKinds.get(kind) || 0) + 1); }

function request(path, body, headers, again = true) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const r = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    r.on('error', (e) => {
      if (again && r.reusedSocket && e.code === 'ECONNRESET') {
        retried++;
        resolve(request(path, body, headers, false));
      } else resolve({ status: 0, text: String(e), ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
    r.end(body);
  });
}
const failure = (r) => (r.status ? `HTTP ${r.status}: ${r.text.slice(0, 120)}` : r.text);

function sign(body) {
  const id = 'msg_' + randomBytes(8).toString('hex'), ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'content-type': 'application/cloudevents-batch+json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${sig}` };
}

// ---- the load ---------------------------------------------------------------

const pushed = []; // [id, ack time]
let acked = { logpush: 0, notify: 0 };
let minute = { lat: [], errors: 0, requests: 0 };
let pushN = 0, lpN = 0, inflight = 0;
const notifyBody = JSON.parse(readFileSync(join(ROOT, 'tests', 'vectors', 'inputs', 'health-check.json'), 'utf8'));

async function onePush() {
  if (inflight > 256) { noteError('more than 256 pushes in flight (the daemon is not keeping up)'); return; }
  inflight++;
  const batch = [];
  for (let i = 0; i < 10; i++) {
    const id = `soak-${pushN++}`;
    batch.push({ specversion: '1.0', id, source: '/soak', type: 'dev.soak.push', subject: `s${pushN % 50}`, time: new Date().toISOString(), data: { n: pushN, pad: 'x'.repeat(800) } });
  }
  const body = JSON.stringify(batch);
  const r = await request('/v1/events', Buffer.from(body), sign(body));
  inflight--;
  minute.requests++;
  if (r.status === 200) {
    const now = Date.now();
    for (const e of batch) pushed.push([e.id, now]);
    minute.lat.push(r.ms);
  } else noteError(`push: ${failure(r)}`);
}

async function oneNotify() {
  notifyBody.alert_correlation_id = randomBytes(16).toString('hex');
  const r = await request('/hooks/notifications', Buffer.from(JSON.stringify(notifyBody)), { 'content-type': 'application/json' });
  minute.requests++;
  if (r.status === 200) acked.notify += JSON.parse(r.text).accepted;
  else noteError(`notification: ${failure(r)}`);
}

async function oneLogpush() {
  const lines = [];
  for (let i = 0; i < LOGPUSH_RECORDS; i++, lpN++)
    lines.push(JSON.stringify({ RayID: 'soak' + lpN.toString(16).padStart(12, '0'), EdgeStartTimestamp: 1763633000000000000 + lpN, ClientRequestHost: 'www.example.com', ClientRequestMethod: 'GET', ClientRequestURI: `/page/${lpN}?q=${'x'.repeat(60)}`, EdgeResponseStatus: 200, CacheCacheStatus: lpN % 3 ? 'hit' : 'miss', ZoneName: 'example.com' }));
  const r = await request('/hooks/logpush/http_requests', gzipSync(lines.join('\n')), { 'content-type': 'application/octet-stream' });
  minute.requests++;
  if (r.status === 200) acked.logpush += JSON.parse(r.text).accepted;
  else noteError(`Logpush: ${failure(r)}`);
}

const timers = [
  setInterval(() => { for (let i = 0; i < PUSH_RPS / 20; i++) onePush(); }, 50),
  setInterval(() => { for (let i = 0; i < NOTIFY_RPS / 10; i++) oneNotify(); }, 100),
  setInterval(oneLogpush, 1000),
];

// ---- per-minute report --------------------------------------------------------

const size = (p) => { try { return statSync(p).size; } catch { return 0; } };
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))[1]) / 1024;
const pct = (a, p) => { if (!a.length) return 0; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
async function metrics() {
  const text = await new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => { let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve(t)); }));
  const sum = (re) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  return { stored: sum(/^synccf_events_stored_total\{[^}]*\} (\d+)$/gm), pruned: sum(/^synccf_pruned_total\{[^}]*\} (\d+)$/gm),
    commitS: sum(/^synccf_commit_duration_seconds_sum ([\d.e+-]+)$/gm), commits: sum(/^synccf_commit_duration_seconds_count (\d+)$/gm) };
}

console.log(`soak${RETENTION ? '' : ' (RETENTION=0: no retention)'}: ${MINUTES} min; pushes ${PUSH_RPS}/s x 10 events (exec handler each), notifications ${NOTIFY_RPS}/s, Logpush ${LOGPUSH_RECORDS} records/s; retention ${MAX_AGE} (Logpush, notifications), ${PUSH_KEEP} pushed events, dedupe ${DEDUPE}`);
// Two columns tell the daemon's part of a push's time from this client's:
// the daemon's mean commit time in the minute (from /metrics), and how late
// this process's own event loop ran (a late loop delays every measured answer).
console.log('| min | RSS MiB | state.db MiB | WAL MiB | live events | stored total | pruned total | push p50 ms | push p99 ms | commit ms (daemon, mean) | client loop delay p99 ms | requests | errors |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const rows = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let last = { commitS: 0, commits: 0 };
for (let m = 1; m <= MINUTES; m++) {
  await new Promise((r) => setTimeout(r, 60000));
  const cur = minute;
  minute = { lat: [], errors: 0, requests: 0 };
  const mt = await metrics();
  const commitMs = mt.commits > last.commits ? ((mt.commitS - last.commitS) / (mt.commits - last.commits)) * 1000 : 0;
  last = mt;
  const lag = loop.percentile(99) / 1e6;
  loop.reset();
  const row = { commitMs, lag, m, rss: rss(), db: size(join(state, 'state.db')) / 1048576, wal: size(join(state, 'state.db-wal')) / 1048576, live: mt.stored - mt.pruned, stored: mt.stored, pruned: mt.pruned, p50: pct(cur.lat, 0.5), p99: pct(cur.lat, 0.99), requests: cur.requests, errors: cur.errors };
  rows.push(row);
  console.log(`| ${m} | ${row.rss.toFixed(1)} | ${row.db.toFixed(1)} | ${row.wal.toFixed(1)} | ${row.live} | ${row.stored} | ${row.pruned} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.commitMs.toFixed(2)} | ${row.lag.toFixed(1)} | ${row.requests} | ${row.errors} |`);
}
timers.forEach(clearInterval);
while (inflight) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 500));
daemon.kill('SIGTERM');
await new Promise((r) => daemon.on('exit', r));

// ---- the end check ------------------------------------------------------------

const sql = (q) => execFileSync('sqlite3', ['-readonly', '-separator', '\t', join(state, 'state.db'), q], { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean);
const stored = new Set(sql("SELECT id FROM events WHERE type = 'dev.soak.push'"));
const prunedIds = new Set(sql('SELECT CAST(h AS TEXT) FROM ids WHERE pruned IS NOT NULL'));
const counter = (name) => Number(sql(`SELECT value FROM counters WHERE name = '${name}'`)[0] || 0);
const count = (type) => Number(sql(`SELECT count(*) FROM events WHERE type GLOB '${type}'`)[0]);
let missing = 0, old = 0;
const end = Date.now();
for (const [id, at] of pushed) {
  if (stored.has(id)) continue;
  if (prunedIds.has(createHash('sha256').update(id).digest().readBigInt64BE(0).toString())) continue;
  if (end - at > DEDUPE_MS) { old++; continue; } // forgotten by design; covered by the count below
  missing++;
}
const checks = [
  ['pushed events: stored + pruned(rule dev.soak.push) = acknowledged', count('dev.soak.push') + counter('pruned.rule:dev.soak.push'), pushed.length],
  ['Logpush records: stored + pruned(rule) = acknowledged', count('com.cloudflare.logpush.*') + counter('pruned.rule:com.cloudflare.logpush.*'), acked.logpush],
  ['notifications: stored + pruned(rule) = acknowledged', count('com.cloudflare.notification.*') + counter('pruned.rule:com.cloudflare.notification.*'), acked.notify],
  ['pushed ids neither stored nor marked pruned (within the dedupe window)', missing, 0],
  ['pruned by a limit other than a rule', counter('pruned.max_events') + counter('pruned.max_bytes') + counter('pruned.max_age'), 0],
];
console.log('\n| end check | got | want |\n|---|---:|---:|');
let bad = 0;
for (const [what, got, want] of checks) { console.log(`| ${what} | ${got} | ${want} |`); if (got !== want) bad++; }
console.log(`\n${pushed.length} pushed events acknowledged (${old} pruned longer ago than the dedupe window), ${acked.logpush} Logpush records, ${acked.notify} notifications; errors ${rows.reduce((a, r) => a + r.errors, 0)}; sent again after a kept-alive connection closed: ${retried}`);
for (const [kind, n] of errorKinds) console.log(`error x${n}: ${kind}`);
if (!bad) rmSync(dir, { recursive: true, force: true });
else console.log(`state kept in ${dir}`);
process.exit(bad ? 1 : 0);
