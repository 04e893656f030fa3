// Crash consistency: SIGKILLs `synccf run` at random moments, over and over,
// while events stream in by each way in, and checks after every kill and at
// the end that nothing acknowledged was lost, nothing was stored twice, no
// cursor skipped ahead of what is stored, and every handler ran to an
// outcome without running again once its success was recorded.
//
//   node tests/crash/harness.mjs [--cycles N] [--seed S]
//
// Three scenarios take turns, each with its own state directory that lives
// through all of its cycles:
//   push  signed batches POSTed to /v1/events by concurrent clients;
//   pull  events posted to the Worker (workerd), followed over its stream;
//   poll  audit-log entries appearing in the fake Cloudflare API.
// Every event runs two exec handlers, `a` then `b`, which append
// "<handler> <event id>" to a log, so the log shows what really ran.
//
// Invariants (checked on the store with the sqlite3 CLI, read-only):
//   I1 every event a client saw acknowledged (push: 200 from synccf; pull:
//      stored by the Worker; poll: served by the API) is stored exactly once;
//   I2 after every kill, the pull cursor covers only events that are stored,
//      and so does the poll high-water mark (cursors never skip);
//   I3 a handler run recorded ok before a kill never runs again;
//   I4 at the end every stored event's runs are ok, each handler ran for it,
//      and `a` ran before `b`.
// The exit status is 0 only with zero violations; a report gives the counts.
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, existsSync, chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac, randomBytes } from 'node:crypto';
import { startWorker, INGEST_SECRETS, hookHeaders } from '../../worker/test/helpers.mjs';
import { startFakeCloudflare } from '../integration/fakecf.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.SYNCCF_BIN ? resolve(ROOT, process.env.SYNCCF_BIN) : join(ROOT, 'build', 'synccf');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const CYCLES = arg('--cycles', 200);
let seed = arg('--seed', Date.now() % 1e9);
const SEED = seed;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = (p) => mkdtempSync(join(tmpdir(), p));

const violations = [];
const violate = (what) => { if (violations.length < 50) console.error(`VIOLATION: ${what}`); violations.push(what); };

// ---- the store, read from outside ------------------------------------------

function sql(state, query) {
  const out = execFileSync('sqlite3', ['-readonly', '-json', join(state, 'state.db'), query], { encoding: 'utf8', maxBuffer: 512 << 20 });
  return out.trim() ? JSON.parse(out) : [];
}
const storedIds = (state) => sql(state, 'SELECT id FROM events').map((r) => r.id);
const okRuns = (state) => sql(state, "SELECT r.handler || ' ' || e.id AS k FROM runs r JOIN events e USING(seq) WHERE r.state = 'ok'").map((r) => r.k);
const cursor = (state, prefix) => sql(state, `SELECT value FROM cursors WHERE name LIKE '${prefix}%'`)[0]?.value;

// ---- the daemon --------------------------------------------------------------

function startRun(state, cfg, env) {
  const child = spawn(BIN, ['--state', state, 'run', '--config', cfg, '--listen', '127.0.0.1:0'], {
    env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise((r) => {
    child.on('exit', (code, signal) => r({ code, signal }));
    child.on('error', (e) => r({ code: null, signal: null, error: e }));
  });
  const port = new Promise((res, rej) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = /msg=listening .*port=(\d+)/.exec(log);
      if (m) res(Number(m[1]));
    });
    exited.then(({ code, signal, error }) => rej(new Error(`synccf exited (${error?.message ?? code ?? signal}) before listening:\n${log}`)));
  });
  return { child, exited, port, get log() { return log; } };
}

// A scenario's files: a config with the two handlers, the handlers' log.
function setup(name, modeYaml) {
  const dir = tmp(`synccf-crash-${name}-`);
  const state = join(dir, 'state');
  const ran = join(dir, 'ran.log');
  const script = join(dir, 'handler.sh');
  writeFileSync(script, `#!/bin/sh\necho "$1 $SYNCCF_EVENT_ID" >> ${ran}\n`);
  chmodSync(script, 0o755);
  const cfg = join(dir, 'synccf.yaml');
  const h = (n) => `  - name: ${n}\n    match: { type: "*" }\n    exec: { argv: [${script}, ${n}], timeout: 10s }\n`;
  writeFileSync(cfg, `${modeYaml}handlers:\n${h('a')}${h('b')}`);
  const lines = () => (existsSync(ran) ? readFileSync(ran, 'utf8').split('\n').filter(Boolean) : []);
  return { name, dir, state, cfg, lines, snapshots: [], kills: 0, ackedIds: new Set(), env: {} };
}

// ---- the three ways in -------------------------------------------------------

const SECRET = 'whsec_' + randomBytes(24).toString('base64');
function signed(body) {
  const id = 'msg_' + randomBytes(8).toString('hex'), ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', Buffer.from(SECRET.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` };
}

// Push: clients send batches of 1-3 events to whatever port synccf has now.
function pushClients(sc, target, n = 3) {
  let stop = false, k = 0;
  const loops = Array.from({ length: n }, async (_, c) => {
    while (!stop) {
      const url = target.url;
      if (!url) { await sleep(5); continue; }
      const ids = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => `push-${c}-${k++}`);
      const body = JSON.stringify(ids.map((id) => ({ specversion: '1.0', id, source: '/crash', type: 'dev.synccf.crash', time: new Date().toISOString(), data: { pad: 'x'.repeat(200) } })));
      try {
        const r = await fetch(url + '/v1/events', { method: 'POST', body, headers: signed(body) });
        if (r.status === 200) {
          const j = await r.json();
          if (j.accepted + j.duplicates === ids.length) ids.forEach((id) => sc.ackedIds.add(id));
          else violate(`push: 200 with ${JSON.stringify(j)} for ${ids.length} events`);
        } else await r.arrayBuffer();
      } catch { await sleep(5); } // synccf is down: the next try goes to its next life
      await sleep(8);
    }
  });
  return async () => { stop = true; await Promise.all(loops); };
}

// Pull: a feeder posts generic hooks to the Worker; the Worker's 200 means
// stored there. The ids synccf must end up with are the Worker's.
function workerFeeder(w) {
  let stop = false, k = 0;
  const loop = (async () => {
    while (!stop) {
      const id = `w-${k++}`;
      const r = await fetch(w.url + '/hooks/generic/crash', { method: 'POST', body: JSON.stringify({ id, subject: id }), headers: { 'content-type': 'application/json', ...hookHeaders } });
      await r.arrayBuffer();
      await sleep(15);
    }
  })();
  return async () => { stop = true; await loop; };
}
async function workerEvents(w, token) {
  const out = [];
  for (let after = 0; ;) {
    const r = await (await fetch(`${w.url}/v1/events?after=${after}&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json();
    out.push(...r.events.map((e) => ({ seq: e.seq, id: e.event.id })));
    if (!r.more || !r.events.length) return out;
    after = r.events[r.events.length - 1].seq;
  }
}

// Poll: audit entries appear in the fake API, each timed 2 s in the past
// and in order, so an entry can never be older than a high-water mark the
// poller already committed (see I2).
function auditFeeder(cf) {
  let stop = false, k = 0;
  const loop = (async () => {
    while (!stop) {
      const i = k++;
      cf.audit.push({
        id: `c${String(i).padStart(7, '0')}-19b1-40d6-954d-70cd5fbd52db`,
        account: { id: cf.account, name: 'Example Account' },
        action: { description: 'Update DNS record', result: 'success', time: new Date(Date.now() - 2000).toISOString(), type: 'update' },
        actor: { id: 'f6b5de0326bb5182b8a4840ee01ec774', context: 'api_token', email: 'ci@example.com', ip_address: '198.51.100.7', type: 'user' },
        raw: { cf_ray_id: '8d1a2b3c4d5e6f70', method: 'PATCH', status_code: 200, uri: '/zones/x/dns_records/y', user_agent: 'curl' },
        resource: { id: `res-${i}`, product: 'dns_records', request: {}, response: {}, scope: 'zones', type: 'dns_record' },
        zone: { id: '023e105f4ecef8ad9ca31a8372d0c353', name: 'example.com' },
      });
      await sleep(40);
    }
  })();
  return async () => { stop = true; await loop; };
}

// ---- checks ------------------------------------------------------------------

// After a kill: what is ok now must never run again (I3); cursors (I2).
async function snapshot(sc) {
  sc.snapshots.push({ lines: sc.lines().length, ok: okRuns(sc.state) });
  if (sc.checkCursor) await sc.checkCursor();
}

function finalChecks(sc) {
  const ids = storedIds(sc.state);
  const stored = new Set(ids);
  if (stored.size !== ids.length) violate(`${sc.name}: an id stored twice`);
  let lost = 0;
  for (const id of sc.ackedIds) if (!stored.has(id)) { lost++; if (lost <= 5) violate(`${sc.name}: acknowledged ${id} not stored (I1)`); }
  if (lost > 5) violate(`${sc.name}: ${lost} acknowledged events not stored in all (I1)`);
  const open = sql(sc.state, "SELECT count(*) AS n FROM runs WHERE state != 'ok'")[0].n;
  if (open) violate(`${sc.name}: ${open} handler runs not ok at the end (I4)`);
  const lines = sc.lines();
  const first = new Map();
  lines.forEach((l, i) => { if (!first.has(l)) first.set(l, i); });
  let missing = 0, order = 0;
  for (const id of ids) {
    const a = first.get(`a ${id}`), b = first.get(`b ${id}`);
    if (a === undefined || b === undefined) missing++;
    else if (a > b) order++;
  }
  if (missing) violate(`${sc.name}: ${missing} stored events whose handlers never ran (I4)`);
  if (order) violate(`${sc.name}: ${order} events whose handler b ran before a (I4)`);
  let reruns = 0;
  for (const s of sc.snapshots) {
    const ok = new Set(s.ok);
    for (let i = s.lines; i < lines.length; i++) if (ok.has(lines[i])) reruns++;
  }
  if (reruns) violate(`${sc.name}: ${reruns} handler runs repeated after their success was recorded (I3)`);
  const extra = lines.length - 2 * ids.length;
  return { stored: ids.length, acked: sc.ackedIds.size, handlerLines: lines.length, reranUnrecorded: extra };
}

// ---- the run -----------------------------------------------------------------

async function main() {
  if (!existsSync(BIN)) throw new Error(`no ${BIN}: build first (make)`);
  const PULL_TOKEN = 'crash-pull-token';
  const w = await startWorker({ bindings: { ...INGEST_SECRETS, PULL_TOKEN, HEARTBEAT_SECONDS: '1' } });
  const cf = await startFakeCloudflare();

  const push = setup('push', 'mode: tunnel\n');
  push.env = { SYNCCF_PUSH_SECRET: SECRET };
  const target = { url: null };
  const stopPush = pushClients(push, target);

  const pull = setup('pull', `mode: worker\nworker_url: ${w.url}\nheartbeat: 1s\n`);
  pull.env = { SYNCCF_PULL_TOKEN: PULL_TOKEN };
  pull.checkCursor = async () => {
    const c = Number(cursor(pull.state, 'pull:') ?? 0);
    const stored = new Set(storedIds(pull.state));
    const behind = (await workerEvents(w, PULL_TOKEN)).filter((e) => e.seq <= c && !stored.has(e.id));
    if (behind.length) violate(`pull: cursor ${c} passes ${behind.length} unstored events, first seq ${behind[0].seq} (I2)`);
    pull.maxCursor = Math.max(pull.maxCursor ?? 0, c);
  };
  const stopWorkerFeed = workerFeeder(w);

  const poll = setup('poll', 'mode: poll\npoll_interval: 1s\npoll_overlap: 5s\n');
  poll.env = { CLOUDFLARE_API_TOKEN: cf.token, CLOUDFLARE_ACCOUNT_ID: cf.account, CLOUDFLARE_API_BASE_URL: cf.url };
  poll.checkCursor = async () => {
    const hwm = cursor(poll.state, 'poll');
    if (!hwm) return;
    const t = Date.parse(hwm);
    const stored = new Set(storedIds(poll.state));
    const behind = cf.audit.filter((e) => Date.parse(e.action.time) <= t && !stored.has(`audit-${e.id}`));
    if (behind.length) violate(`poll: high-water mark ${hwm} passes ${behind.length} unstored entries (I2)`);
  };
  const stopAuditFeed = auditFeeder(cf);

  const scenarios = [push, pull, poll];
  const t0 = Date.now();
  let startFailures = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const sc = scenarios[cycle % 3];
    const d = startRun(sc.state, sc.cfg, sc.env);
    try {
      const port = await d.port;
      if (sc === push) target.url = `http://127.0.0.1:${port}`;
    } catch (e) {
      startFailures++;
      violate(`${sc.name}: cycle ${cycle}: ${e.message.slice(0, 400)}`);
      continue;
    }
    // Killed anywhere from its first moments (catch-up, the first poll,
    // resuming handlers) to well into steady work.
    await sleep(rand() < 0.3 ? rand() * 120 : 120 + rand() * 900);
    d.child.kill('SIGKILL');
    await d.exited;
    if (sc === push) target.url = null;
    sc.kills++;
    if (/level=error/.test(d.log) && !/cannot record/.test(d.log)) violate(`${sc.name}: cycle ${cycle} logged an error:\n${d.log.split('\n').filter((l) => /level=error/.test(l)).join('\n')}`);
    await snapshot(sc);
    if ((cycle + 1) % 30 === 0) console.log(`  ${cycle + 1}/${CYCLES} kills, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }

  // The feeds stop; a last life for each scenario to catch up and drain.
  await stopPush();
  await stopWorkerFeed();
  await stopAuditFeed();
  for (const e of await workerEvents(w, PULL_TOKEN)) pull.ackedIds.add(e.id);
  for (const e of cf.audit) poll.ackedIds.add(`audit-${e.id}`);
  const report = {};
  for (const sc of scenarios) {
    const d = startRun(sc.state, sc.cfg, sc.env);
    await d.port;
    const t1 = Date.now(), deadline = t1 + 120000;
    for (;;) {
      const stored = new Set(storedIds(sc.state));
      const done = [...sc.ackedIds].every((id) => stored.has(id)) &&
        sql(sc.state, "SELECT count(*) AS n FROM runs WHERE state != 'ok'")[0].n === 0;
      if (done || Date.now() > deadline) break;
      await sleep(250);
    }
    if (process.env.CRASH_DEBUG) console.log(`--- ${sc.name} last life:\n${d.log}`);
    d.child.kill('SIGTERM');
    const { code } = await d.exited;
    if (code !== 0) violate(`${sc.name}: the final SIGTERM exited ${code}`);
    if (sc.checkCursor) await sc.checkCursor();
    report[sc.name] = { kills: sc.kills, ...finalChecks(sc), drain: (Date.now() - t1) / 1000 };
  }
  await w.dispose();
  await cf.close();

  console.log(`\ncrash harness: ${CYCLES} SIGKILL/restart cycles in ${((Date.now() - t0) / 1000).toFixed(0)} s (seed ${SEED}, ${BIN.replace(ROOT + '/', '')})`);
  console.log('scenario  kills  acknowledged  stored  handler runs  reran (unrecorded outcome)  last life (s)');
  for (const [name, r] of Object.entries(report))
    console.log(`${name.padEnd(8)}  ${String(r.kills).padStart(5)}  ${String(r.acked).padStart(12)}  ${String(r.stored).padStart(6)}  ${String(r.handlerLines).padStart(12)}  ${String(r.reranUnrecorded).padStart(5)}  ${r.drain.toFixed(1).padStart(27)}`);
  console.log(`start failures: ${startFailures}; invariant violations: ${violations.length}`);
  process.exit(violations.length ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
