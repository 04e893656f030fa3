// One daemon per store and per port: a second daemon on a state directory
// exits 1 naming the first, so an exec handler runs once per event; a taken
// port is an error; the read-only commands work beside the daemon; replay runs
// a handler exactly once whether or not a daemon is running; a SIGKILLed
// daemon's lock never blocks its restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startDaemon, post, cli, tempDir, storedEvents, until } from './lib.mjs';

const json = { 'content-type': 'application/json' };

// A config with one exec handler that appends the event's id to ran.log.
function project() {
  const dir = tempDir();
  const log = join(dir, 'ran.log');
  const rec = join(dir, 'rec.sh');
  writeFileSync(rec, `#!/bin/sh\necho "$SYNCCF_EVENT_ID" >> ${log}\n`);
  chmodSync(rec, 0o755);
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, `handlers:\n  - name: rec\n    match: { type: "dev.synccf.hook.*" }\n    exec: { argv: [${rec}] }\n`);
  return { dir, cfg, state: join(dir, 'state'), ran: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []) };
}

// Runs synccf to its exit; resolves with its status and output.
function runToExit(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${args.join(' ')} did not exit:\n${err}`)); }, 15000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

async function send(d, subject) {
  const r = await post(`${d.url}/hooks/generic/t`, JSON.stringify({ subject, data: { subject } }), json);
  assert.equal(r.status, 200, r.text);
  const ev = (await storedEvents(d.state)).find((e) => e.subject === subject);
  assert.ok(ev, `event ${subject} is stored`);
  return ev.id;
}

async function runState(state, id) {
  const runs = JSON.parse(await cli(state, 'events', 'show', id, '--json')).runs;
  assert.equal(runs.length, 1);
  return runs[0];
}

test('a second daemon on a state directory exits 1 naming the first; each event runs its handler once', async () => {
  const p = project();
  const d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  try {
    const pid = String(d.child.pid);
    // Every command that runs a dispatcher refuses, before opening anything
    // else (pull without a Worker, poll without an account would otherwise
    // fail later, for another reason).
    for (const cmd of [['receive', '--listen', '127.0.0.1:0'], ['run', '--listen', '127.0.0.1:0'], ['pull', '--worker-url', 'http://127.0.0.1:9'], ['queue'], ['poll'], ['tunnel', '--listen', '127.0.0.1:0']]) {
      const r = await runToExit(['--state', p.state, '--config', p.cfg, ...cmd]);
      assert.equal(r.code, 1, `${cmd[0]}: ${r.err}`);
      assert.ok(r.err.includes(`state directory ${p.state} is in use by pid ${pid}`), `${cmd[0]}: ${r.err}`);
      assert.doesNotMatch(r.err, /msg=listening|msg=started/, cmd[0]);
    }
    const ids = [];
    for (const s of ['one', 'two', 'three']) ids.push(await send(d, s));
    await until('all handler runs ok', async () => {
      const states = await Promise.all(ids.map((id) => runState(p.state, id)));
      return states.every((r) => r.state === 'ok');
    });
  } finally {
    assert.equal((await d.stop()).code, 0);
  }
  // Stopped (runs drained): each event's handler ran exactly once.
  assert.deepEqual([...p.ran()].sort(), [...new Set(p.ran())].sort(), 'no event ran twice');
  assert.equal(p.ran().length, 3);
  assert.equal(readFileSync(join(p.state, 'lock'), 'utf8'), '', 'a stopped daemon leaves no pid behind');
});

test('a SIGKILLed daemon never blocks its restart', async () => {
  const p = project();
  for (let i = 0; i < 3; i++) {
    const d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
    await send(d, `kill-${i}`);
    const { signal } = await d.stop('SIGKILL');
    assert.equal(signal, 'SIGKILL');
  }
  const d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  await d.stop();
  assert.equal((await storedEvents(p.state)).length, 3);
});

test('a taken port is an error naming the address; the first daemon keeps it', async () => {
  const a = await startDaemon();
  try {
    const other = tempDir();
    const addr = `127.0.0.1:${a.port}`;
    for (const cmd of ['receive', 'run']) {
      const r = await runToExit(['--state', other, cmd, '--listen', addr]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, new RegExp(`cannot listen on ${addr.replace(/\./g, '\\.')}: address already in use`));
    }
    // Every request still reaches the first daemon's store.
    for (let i = 0; i < 20; i++) assert.equal((await post(`${a.url}/hooks/generic/p`, JSON.stringify({ subject: `p${i}` }), json)).status, 200);
    assert.equal((await storedEvents(a.state)).length, 20);
    assert.ok(!existsSync(join(other, 'state.db')) || (await storedEvents(other)).length === 0, 'nothing reached the second store');
  } finally { await a.stop(); }
});

test('status, events and config check work beside the running daemon', async () => {
  const p = project();
  const d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  try {
    const id = await send(d, 'beside');
    const st = JSON.parse(await cli(p.state, 'status', '--json'));
    assert.equal(st.events.total, 1);
    assert.match(await cli(p.state, 'status'), /events\s+1 /);
    assert.equal((await storedEvents(p.state))[0].id, id);
    assert.equal(JSON.parse(await cli(p.state, 'events', 'show', id, '--json')).event.id, id);
    assert.match(await cli(p.state, '--config', p.cfg, 'config', 'check'), /^configuration ok/);
    // The daemon is still the one holding the store and running handlers.
    await until('the run', async () => (await runState(p.state, id)).state === 'ok');
  } finally { assert.equal((await d.stop()).code, 0); }
  assert.deepEqual(p.ran(), [(await storedEvents(p.state))[0].id]);
});

test('replay with a daemon running queues the runs for it; without one it runs them itself; once each', async () => {
  const p = project();
  let d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  let id;
  try {
    id = await send(d, 'again');
    await until('the first run', async () => (await runState(p.state, id)).state === 'ok');
    assert.equal(p.ran().length, 1);
    const first = await runState(p.state, id);

    const r = await runToExit(['--state', p.state, '--config', p.cfg, 'replay', id]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`1 handler run queued for ${id}; the daemon \\(pid ${d.child.pid}\\) runs them`));
    // The replay itself ran nothing: only the daemon's dispatcher does.
    assert.doesNotMatch(r.err, /handler ok/);
    await until('the daemon to run the replay', async () => {
      const run = await runState(p.state, id);
      return run.state === 'ok' && run.updated !== first.updated;
    });
    assert.deepEqual(p.ran(), [id, id]);
  } finally { assert.equal((await d.stop()).code, 0); }
  assert.deepEqual(p.ran(), [id, id], 'the daemon ran the replay once');

  // No daemon: replay runs the handler before it exits, exactly once, and
  // records it as done.
  const r = await runToExit(['--state', p.state, '--config', p.cfg, 'replay', id]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`1 handler run for ${id}: 1 ok`));
  assert.deepEqual(p.ran(), [id, id, id]);
  const run = await runState(p.state, id);
  assert.equal(run.state, 'ok');
  assert.equal(run.attempts, 1);

  // A daemon started afterwards finds nothing left to run for it: after
  // another event's run (the barrier) and a drained stop, still three.
  d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  let later;
  try {
    later = await send(d, 'later');
    await until('the later run', async () => (await runState(p.state, later)).state === 'ok');
  } finally { assert.equal((await d.stop()).code, 0); }
  assert.deepEqual(p.ran(), [id, id, id, later]);
});

test('a failing handler: replay without a daemon exits 1 and leaves the run pending for the daemon', async () => {
  const p = project();
  const d = await startDaemon({ state: p.state, args: ['--config', p.cfg] });
  let id;
  try {
    id = await send(d, 'will-fail');
    await until('the first run', async () => (await runState(p.state, id)).state === 'ok');
  } finally { await d.stop(); }
  const cfg = join(p.dir, 'fail.yaml');
  writeFileSync(cfg, 'handlers:\n  - name: rec\n    match: { type: "dev.synccf.hook.*" }\n    exec: { argv: [/bin/false] }\n');
  const r = await runToExit(['--state', p.state, '--config', cfg, 'replay', id]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /1 handler run for .*: 0 ok, 1 failed/);
  const run = await runState(p.state, id);
  assert.equal(run.state, 'pending');
  assert.equal(run.attempts, 1);
});

test('replay of an unknown id, and of a store not created, exits 1 and creates nothing', async () => {
  const state = join(tempDir(), 'never');
  const r = await runToExit(['--state', state, 'replay', 'nope']);
  assert.equal(r.code, 1);
  assert.match(r.err, /no event with id 'nope'/);
  assert.ok(!existsSync(state));
});
