// The command line a newcomer meets: `synccf help` and every COMMAND --help
// agree with each other and with README.md, never touch the store; a flag
// without its value, an unknown option and a port out of range are named;
// status and events before any daemon has run say so and create nothing; the
// text status shows the sources; a state directory others can read is warned
// about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, tempDir, startDaemon, startSource, status } from './lib.mjs';

function synccf(...args) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 15000, env: { PATH: process.env.PATH } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A state directory that does not exist: whatever touches the store would create it.
const absent = () => join(tempDir(), 'state');

// "  synccf SYNOPSIS" lines of `synccf help`, by command.
function helpSynopses() {
  const r = synccf('help');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n').filter((l) => l.startsWith('  synccf ')).map((l) => l.slice(2));
  assert.ok(lines.length >= 12, r.out);
  return lines;
}

const commandOf = (line) => line.split(' ')[1];

test('synccf help and README.md list the same synopses', () => {
  const help = helpSynopses();
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /```sh\n(synccf run [\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md has the usage block');
  const documented = block[1].split('\n').filter(Boolean).map((l) => l.replace(/\s+#.*$/, '').trim());
  assert.deepEqual([...documented].sort(), [...help].sort());
  // --help, -h and `synccf help` with no command list the same thing.
  assert.equal(synccf('--help').out, synccf('help').out);
  assert.equal(synccf('-h').out, synccf('help').out);
  // No command: the usage on stderr, exit 2.
  const none = synccf();
  assert.equal(none.code, 2);
  assert.equal(none.err, synccf('help').out);
});

test('every COMMAND --help (and -h) prints its synopsis and options, exits 0 and touches no store', () => {
  const help = helpSynopses();
  const commands = [...new Set(help.map(commandOf))].filter((c) => c !== 'version' && c !== 'help');
  for (const c of ['config', 'events', 'poll', 'pull', 'queue', 'receive', 'replay', 'run', 'status', 'tunnel']) assert.ok(commands.includes(c), c);
  for (const cmd of commands) {
    for (const flag of ['--help', '-h']) {
      const state = absent();
      const r = synccf('--state', state, cmd, flag);
      assert.equal(r.code, 0, `${cmd} ${flag}: ${r.err}`);
      assert.equal(r.err, '', `${cmd} ${flag} writes nothing to stderr`);
      const forms = help.filter((l) => commandOf(l) === cmd);
      assert.ok(r.out.startsWith(`usage: ${forms[0]}\n`), `${cmd} ${flag}:\n${r.out}`);
      for (const f of forms) assert.ok(r.out.includes(f), `${cmd} --help shows '${f}'`);
      assert.match(r.out, /--state DIR/, 'the common options too');
      assert.equal(r.out, synccf('help', cmd).out, `synccf help ${cmd} is ${cmd} --help`);
      assert.ok(!existsSync(state), `${cmd} ${flag} created the state directory`);
    }
  }
  // Wherever it stands after the command, and whatever else is there.
  for (const args of [['replay', '--help'], ['replay', 'some-id', '--help'], ['events', 'show', '--help'], ['events', 'list', '--limit', '5', '-h'], ['receive', '--listen', '127.0.0.1:0', '--help']]) {
    const state = absent();
    const r = synccf('--state', state, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.out.startsWith(`usage: synccf ${args[0]} `), r.out);
    assert.ok(!existsSync(state), `${args.join(' ')} created the state directory`);
  }
  // The daemon commands' help lists the options they take.
  const receive = synccf('receive', '--help').out;
  for (const o of ['--listen HOST:PORT', '--filter', '--concurrency N', '--max-body BYTES', '--dispatch-max-attempts N (8)']) assert.ok(receive.includes(o), o);
  assert.match(synccf('events', '--help').out, /--since TIME[\s\S]*--limit N[\s\S]*--lines N/);
  assert.equal(synccf('help', 'nonsense').code, 2);
});

test('the daemon commands\' --help list every setting of the settings table as its flag, and no other', () => {
  // The table in lib/config.c, read as text: each entry's key, and whether it is a secret.
  const src = readFileSync(join(ROOT, 'lib', 'config.c'), 'utf8');
  const table = src.slice(src.indexOf('const struct setting config_settings[]'));
  const entries = [...table.slice(0, table.indexOf('};')).matchAll(/^\s*\{"([a-z_.]+)", (SET_[A-Z]+)/gm)];
  assert.ok(entries.length >= 40, 'the settings table was read');
  const want = entries.map(([, key, type]) => '--' + (type === 'SET_SECRET' ? `${key}_file` : key).replace(/[._]/g, '-')).sort();
  for (const cmd of ['run', 'receive', 'tunnel', 'pull', 'queue', 'poll']) {
    const out = spawnSync(BIN, [cmd, '--help'], { encoding: 'utf8' }).stdout;
    const section = out.slice(out.indexOf('\nsettings'), out.indexOf('\ncommon options'));
    const got = [...section.matchAll(/^ {2}(--[a-z0-9-]+) /gm)].map((m) => m[1]).sort();
    assert.deepEqual(got, want, `${cmd} --help`);
  }
});

test('a flag without its value says so; an unknown global option is an option, not a command', () => {
  for (const [args, msg] of [
    [['receive', '--listen'], 'synccf receive: --listen needs a value'],
    [['run', '--listen', '--threads', '2'], 'synccf run: --listen needs a value'],
    [['events', 'list', '--limit'], 'synccf events list: --limit needs a value'],
    [['--state'], 'synccf: --state needs a value'],
    [['status', '--config'], 'synccf: --config needs a value'],
  ]) {
    const state = absent();
    const r = synccf(...(args[0] === '--state' ? args : ['--state', state, ...args]));
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.err.includes(msg), `${args.join(' ')}: ${r.err}`);
    assert.doesNotMatch(r.err, /unknown/);
    assert.ok(!existsSync(state));
  }
  const bogus = synccf('--bogus');
  assert.equal(bogus.code, 2);
  assert.match(bogus.err, /^synccf: unknown option '--bogus'/);
  assert.doesNotMatch(bogus.err, /unknown command/);
  const sub = synccf('--state', absent(), 'receive', '--bogus');
  assert.equal(sub.code, 2);
  assert.match(sub.err, /synccf receive: unknown option '--bogus'/);
  const cmd = synccf('bogus');
  assert.equal(cmd.code, 2);
  assert.match(cmd.err, /^synccf: unknown command 'bogus'/);
});

test('--listen with a port out of range says so', () => {
  for (const port of ['99999', '65536']) {
    const r = synccf('--state', tempDir(), 'receive', '--listen', `127.0.0.1:${port}`);
    assert.equal(r.code, 2, r.err);
    assert.ok(r.err.includes(`listen address 127.0.0.1:${port}: port ${port} is out of range`), r.err);
  }
  const r = synccf('--state', tempDir(), 'receive', '--listen', 'nowhere');
  assert.equal(r.code, 2);
  assert.match(r.err, /listen address nowhere is not HOST:PORT/);
});

test('help and version answer even when the configuration or the env file is broken', () => {
  const dir = tempDir();
  const badYaml = join(dir, 'bad.yaml');
  const badEnv = join(dir, 'bad.env');
  writeFileSync(badYaml, 'handlers: [\n');
  writeFileSync(badEnv, 'NOT A LINE\n');
  const run = (env, ...args) => {
    const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 15000, env: { PATH: process.env.PATH, ...env } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const broken = [
    [{ SYNCCF_CONFIG: badYaml }],
    [{}, '--config', badYaml],
    [{}, '--env-file', badEnv],
  ];
  for (const [env, ...pre] of broken) {
    for (const args of [['--help'], ['-h'], ['help'], ['help', 'run'], ['--version'], ['version'], ['run', '--help'], ['receive', '-h']]) {
      const r = run(env, ...pre, ...args);
      assert.equal(r.code, 0, `${JSON.stringify(env)} ${[...pre, ...args].join(' ')}: ${r.err}`);
      assert.ok(r.out.length > 0, args.join(' '));
    }
    // Anything else still reads the broken file and says so.
    assert.equal(run(env, ...pre, 'run').code, 2);
  }
});

test('status and events on a store not yet created say so, exit 0 and create nothing', () => {
  const state = absent();
  const db = join(state, 'state.db');
  const msg = `no events yet (store ${db} not created)\n`;
  for (const args of [['status'], ['events'], ['events', 'list'], ['events', 'list', '--type', 'x.*'], ['events', 'tail']]) {
    const r = synccf('--state', state, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.out, msg, args.join(' '));
    assert.equal(r.err, '');
  }
  const js = synccf('--state', state, 'status', '--json');
  assert.equal(js.code, 0);
  assert.deepEqual(JSON.parse(js.out), { store: { path: db, created: false }, events: { total: 0 } });
  const ev = synccf('--state', state, 'events', 'list', '--json');
  assert.equal(ev.code, 0);
  assert.equal(ev.out, '', 'no events: no lines');
  assert.equal(ev.err, msg);
  const show = synccf('--state', state, 'events', 'show', 'x');
  assert.equal(show.code, 1);
  assert.equal(show.err, `synccf: no event with id 'x': ${msg}`);
  for (const r of [js, ev, show]) assert.doesNotMatch(r.out + r.err, /sqlite|unable to open|state\.db: /i);
  assert.ok(!existsSync(state), 'nothing created');
});

test('status --json on a store whose file exists but whose tables are not made yet counts 0 events, shaped as ever', async () => {
  // What a reader sees in the instant a daemon starting on a new directory
  // has created state.db but not yet its schema (an empty file is that).
  const state = tempDir();
  writeFileSync(join(state, 'state.db'), '');
  const js = synccf('--state', state, 'status', '--json');
  assert.equal(js.code, 0, js.err);
  const early = JSON.parse(js.out).events;
  assert.equal(early.total, 0);
  assert.equal(early.first_received, null);
  const d = await startDaemon();
  try {
    const made = (await status(d.state)).events;
    assert.deepEqual(Object.keys(early).sort(), Object.keys(made).sort(), 'the same keys as a store with its tables');
  } finally {
    await d.stop();
  }
});

test('the text status shows the sources: way in, state, last success, last error, cursor, lag', async () => {
  const p = await startSource('pull', { args: ['--worker-url', 'http://127.0.0.1:9'] });
  try {
    const st = await (async () => {
      for (;;) {
        const s = await status(p.state);
        if (s.sources?.pull?.last_error) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = synccf('--state', p.state, 'status');
    assert.equal(r.code, 0, r.err);
    const line = r.out.split('\n').find((l) => /^ {2}pull /.test(l));
    assert.ok(line, r.out);
    assert.match(r.out, /^sources \(way in, state, last success, last error, cursor, lag\)$/m);
    assert.ok(line.includes(`state=${st.sources.pull.state}`), line);
    assert.ok(line.includes('last_success=-'), line);
    assert.ok(line.includes(`last_error=${st.sources.pull.last_error}`), line);
    assert.ok(line.includes(`cursor=${st.sources.pull.cursor}`), line);
    assert.match(line, /lag=-$/);
  } finally { await p.stop(); }
  // A store no pull, queue or poll has written: the sources say so.
  const d = await startDaemon();
  try {
    assert.match(synccf('--state', d.state, 'status').out, /^sources .*\n {2}\(none/m);
  } finally { await d.stop(); }
});

test('an existing state directory that others can read is used with a warning', async () => {
  const open = join(tempDir(), 'open');
  mkdirSync(open);
  chmodSync(open, 0o755);
  const d = await startDaemon({ state: open });
  await d.stop();
  assert.match(d.log, /level=warn msg="state directory is open to other users; chmod 700 it" dir=\S*open mode=0755/);

  const closed = tempDir();
  const c = await startDaemon({ state: closed });
  await c.stop();
  assert.doesNotMatch(c.log, /open to other users/);
  // A directory synccf creates is 0700.
  const fresh = join(tempDir(), 'a', 'b');
  const f = await startDaemon({ state: fresh });
  await f.stop();
  assert.doesNotMatch(f.log, /open to other users/);
});
