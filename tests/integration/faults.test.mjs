// Faults under the store: a file-size limit, a full disk, a read-only state
// directory, a database locked by another process, a corrupt database file.
// While a fault lasts synccf answers 503 (never 2xx for an event it did not
// store), says so in /readyz and its log, and recovers by itself when the
// fault clears; what it cannot open it refuses at start, touching nothing.
// The tmpfs cases need mount(2) (root); elsewhere they are skipped, and the
// file-size limit (prlimit) exercises the same failure path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startDaemon, post, cli, tempDir, storedEvents, BIN, until, sleep } from './lib.mjs';

const json = { 'content-type': 'application/json' };
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');

// A project with one exec handler that appends each event's subject to
// ran.log. Events are named by subject: a generic hook's id is a hash.
function project(slow = 0) {
  const dir = tempDir('synccf-fault-');
  const log = join(dir, 'ran.log');
  const script = join(dir, 'record.sh');
  writeFileSync(script, `#!/bin/sh\necho "$SYNCCF_EVENT_SUBJECT" >> ${log}\nsleep ${slow}\n`);
  chmodSync(script, 0o755);
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `handlers:\n  - name: record\n    match: { type: "dev.synccf.hook.*" }\n    exec: { argv: [${script}], timeout: 20s }\n`);
  return { dir, log, cfg, ran: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []) };
}

const send = (d, id) => post(d.url + '/hooks/generic/fault', JSON.stringify({ id, subject: id }), json).then((r) => r.status, () => 0);
const ready = (d) => fetch(d.url + '/readyz').then((r) => r.status);
const metric = async (d, re) => Number(re.exec(await (await fetch(d.url + '/metrics')).text())?.[1] ?? 0);

// Sends `n` events from 4 concurrent loops; returns the ids answered 200 and
// the statuses seen.
async function burst(d, prefix, n) {
  const acked = [], statuses = {};
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < n) {
      const id = `${prefix}-${next++}`;
      const s = await send(d, id);
      statuses[s] = (statuses[s] ?? 0) + 1;
      if (s === 200) acked.push(id);
    }
  }));
  return { acked, statuses };
}

// The common shape of a runtime fault: before, during (all refused with
// 503, readiness down, a clear log line), after (accepted again, every
// acknowledged event stored and handled once, no refused one stored).
async function runtimeFault(t, d, p, { start, clear, logRe }) {
  assert.equal(await send(d, 'before'), 200);
  await start();
  const during = await burst(d, 'during', 12);
  assert.deepEqual(during.statuses, { 503: 12 }, 'every event during the fault is refused with 503');
  assert.equal(await ready(d), 503, '/readyz reports the store');
  await clear();
  const after = await burst(d, 'after', 12);
  assert.deepEqual(after.statuses, { 200: 12 }, 'accepted again once the fault clears');
  assert.equal(await ready(d), 200);
  const ids = new Set((await storedEvents(d.state)).map((e) => e.subject));
  for (const id of ['before', ...after.acked]) assert.ok(ids.has(id), `${id} stored`);
  for (let i = 0; i < 12; i++) assert.ok(!ids.has(`during-${i}`), `during-${i} was refused and is not stored`);
  await until('the handlers', () => p.ran().length >= 13);
  await sleep(300);
  assert.deepEqual(p.ran().sort(), ['before', ...after.acked].sort(), 'each stored event handled once, no refused one');
  assert.match(d.log, logRe, 'the log says what failed');
  assert.match(d.log, /msg="store recovered" failed_commits=\d+/);
  assert.ok(await metric(d, /synccf_rejections_total\{reason="store_unavailable"\} (\d+)/) >= 12, 'counted');
  t.diagnostic(`during: ${JSON.stringify(during.statuses)}, after: ${JSON.stringify(after.statuses)}`);
}

test('a file-size limit (ulimit -f) mid-run: 503 until it is lifted, then everything flows', async (t) => {
  const p = project();
  const d = await startDaemon({ args: ['--config', p.cfg] });
  try {
    const lim = (v) => execFileSync('prlimit', ['--pid', String(d.child.pid), `--fsize=${v}`]);
    await runtimeFault(t, d, p, {
      start: () => lim('4096:unlimited'),
      clear: () => lim('unlimited:unlimited'),
      logRe: /level=error msg="commit failed, answering 503 until it succeeds" error="[^"]+" failed_commits=1 db=/,
    });
  } finally {
    assert.equal((await d.stop()).code, 0, 'a clean exit after the fault');
  }
});

// A small tmpfs of our own, or null where mounting is not allowed.
function tmpfs(size = '4m') {
  const dir = tempDir('synccf-tmpfs-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  if (r.status !== 0) return null;
  return {
    dir,
    remount: (opt) => execFileSync('mount', ['-o', `remount,${opt}`, dir]),
    fill: () => spawnSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=64k']),
    unfill: () => rmSync(join(dir, 'filler'), { force: true }),
    umount: () => spawnSync('umount', ['-l', dir]),
  };
}
const mountable = (() => { const m = tmpfs('1m'); if (!m) return false; m.umount(); return true; })();

test('disk full mid-run: 503 until space is freed, then everything flows', { skip: !mountable && 'needs mount(2)' }, async (t) => {
  const fs = tmpfs();
  const p = project();
  const d = await startDaemon({ state: fs.dir, args: ['--config', p.cfg] });
  try {
    await runtimeFault(t, d, p, {
      start: () => fs.fill(),
      clear: () => fs.unfill(),
      logRe: /level=error msg="commit failed, answering 503 until it succeeds" error="database or disk is full"/,
    });
  } finally {
    assert.equal((await d.stop()).code, 0);
    fs.umount();
  }
});

// Starts synccf and waits for it to exit on its own (it must refuse to start).
function refusesToStart(state, extra = []) {
  const r = spawnSync(BIN, ['--state', state, 'receive', '--listen', '127.0.0.1:0', ...extra], { encoding: 'utf8', timeout: 15000 });
  return { code: r.status, err: r.stderr };
}

test('a read-only state directory is refused at start, untouched; after remount rw it starts with its events', { skip: !mountable && 'needs mount(2)' }, async () => {
  const fs = tmpfs();
  try {
    const d = await startDaemon({ state: fs.dir });
    assert.equal(await send(d, 'kept'), 200);
    await d.stop();
    const db = join(fs.dir, 'state.db');
    const before = sha(db);
    fs.remount('ro');
    const r = refusesToStart(fs.dir);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /level=error msg="cannot start" error="cannot open [^"]*state\.db: Read-only file system"/);
    assert.equal(sha(db), before, 'the database is untouched');
    fs.remount('rw');
    const d2 = await startDaemon({ state: fs.dir });
    assert.deepEqual((await storedEvents(fs.dir)).map((e) => e.subject), ['kept']);
    assert.equal(await send(d2, 'new'), 200);
    await d2.stop();
  } finally { fs.umount(); }
});

// Holds an exclusive SQLite lock on the store from another process.
async function lockStore(db) {
  const child = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.write('PRAGMA busy_timeout=5000;\nBEGIN EXCLUSIVE;\nSELECT \'locked\';\n');
  await new Promise((resolve) => child.stdout.on('data', (b) => { if (String(b).includes('locked')) resolve(); }));
  return async () => { child.stdin.end('COMMIT;\n'); await new Promise((r) => child.on('exit', r)); };
}

test('a database locked by another process: 503 while it holds the lock, then everything flows', async (t) => {
  const p = project();
  const d = await startDaemon({ args: ['--config', p.cfg] });
  let unlock;
  try {
    const t0 = Date.now();
    await runtimeFault(t, d, p, {
      start: async () => { unlock = await lockStore(join(d.state, 'state.db')); },
      clear: async () => { await unlock(); unlock = null; },
      logRe: /level=error msg="commit failed, answering 503 until it succeeds" error="database is locked"/,
    });
    t.diagnostic(`whole case ${Date.now() - t0} ms (each refused commit waits out the 2 s busy timeout)`);
  } finally {
    if (unlock) await unlock();
    assert.equal((await d.stop()).code, 0);
  }
});

// In WAL mode another process's write lock does not stop readers, so synccf
// starts (its schema is already there) and refuses events until it can write.
// The outcome of a handler that ran must not be lost when it cannot be
// written: the dispatcher keeps it and retries the write, and does not run
// the handler again. (A full disk does not reliably refuse this small write:
// SQLite reuses the WAL file's existing pages. A lock always does.)
test('the store locked while a handler runs: its outcome is kept and recorded later, not run again', async () => {
  const p = project(1);
  const d = await startDaemon({ args: ['--config', p.cfg] });
  let unlock;
  try {
    assert.equal(await send(d, 'slow-1'), 200);
    await until('the handler to start', () => p.ran().length === 1);
    unlock = await lockStore(join(d.state, 'state.db')); // the handler finishes meanwhile
    await until('the failed record', () => /cannot record a handler outcome; retrying every second/.test(d.log));
    await sleep(1500);
    assert.deepEqual(p.ran(), ['slow-1'], 'not run again while the outcome waits');
    await unlock(); unlock = null;
    const [ev] = await storedEvents(d.state);
    await until('the outcome', async () => JSON.parse(await cli(d.state, 'events', 'show', ev.id, '--json')).runs[0].state === 'ok');
    assert.deepEqual(p.ran(), ['slow-1'], 'ran exactly once');
  } finally {
    if (unlock) await unlock();
    assert.equal((await d.stop()).code, 0);
  }
});

test('a database locked by another process at start: it starts, refuses with 503, then flows', async () => {
  const state = tempDir();
  const d0 = await startDaemon({ state });
  await d0.stop();
  let unlock = await lockStore(join(state, 'state.db'));
  const d = await startDaemon({ state });
  try {
    assert.equal(await send(d, 'locked'), 503);
    assert.equal(await ready(d), 503);
    await unlock(); unlock = null;
    assert.equal(await send(d, 'free'), 200);
    assert.equal(await ready(d), 200);
    assert.deepEqual((await storedEvents(state)).map((e) => e.subject), ['free']);
    assert.match(d.log, /msg="store recovered"/);
  } finally {
    if (unlock) await unlock();
    assert.equal((await d.stop()).code, 0);
  }
});

test('a corrupt database file is refused at start with a clear message and left as it was', async () => {
  const state = tempDir();
  const d = await startDaemon({ state });
  assert.equal(await send(d, 'x'), 200);
  await d.stop();
  const db = join(state, 'state.db');
  const bytes = readFileSync(db);
  bytes.write('this is no longer SQLite', 0); // the header
  writeFileSync(db, bytes);
  const before = sha(db);
  const r = refusesToStart(state);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /msg="cannot start" error="[^"]*file is not a database/);
  assert.equal(sha(db), before, 'not overwritten');
  assert.ok(!existsSync(join(state, 'state.db-wal')) || readFileSync(join(state, 'state.db-wal')).length === 0, 'no WAL written over it');
});
