// The deployment examples: the installed systemd unit (dist/synccf.service.in) passes systemd-analyze verify
// and runs synccf as Type=notify (READY=1 reaches a notify socket), the
// process-compose file is checked by the unit tests (libyaml), the commented
// config by `config check`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { BIN, ROOT, tempDir } from './lib.mjs';

const unit = readFileSync(join(ROOT, 'dist', 'synccf.service.in'), 'utf8');

test('the systemd unit is valid and hardened', { skip: spawnSync('which', ['systemd-analyze']).status !== 0 && 'no systemd-analyze' }, () => {
  for (const k of ['Type=notify', 'WatchdogSec=', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'StateDirectory=synccf', 'User=synccf', 'ReadWritePaths=/var/lib/synccf', 'PrivateTmp=yes', 'SystemCallFilter=@system-service'])
    assert.ok(unit.includes(k), k);
  const dir = tempDir();
  // verify needs the ExecStart binary to exist: point it at the build.
  writeFileSync(join(dir, 'synccf.service'), unit.replaceAll('@bindir@', dirname(BIN)));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'synccf.service')], { encoding: 'utf8' });
  const problems = (r.stderr || '').split('\n').filter((l) => l.includes('synccf.service') && !/Failed to (connect|determine)|Cannot|not running|System has not been booted/.test(l));
  assert.deepEqual(problems, [], r.stderr);
});

test('Type=notify: synccf sends READY=1 to NOTIFY_SOCKET once it is serving', async () => {
  const dir = tempDir();
  const sockPath = join(dir, 'notify.sock');
  // An abstract-free unix datagram socket, as systemd provides.
  const py = spawn('python3', ['-c', `
import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("bound", flush=True)
s.settimeout(10)
while True:
    m=s.recv(4096).decode(); print(m, flush=True)
    if "READY=1" in m: break
`, sockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  py.stdout.on('data', (d) => { got += d; });
  await new Promise((r) => { const i = setInterval(() => { if (got.includes('bound')) { clearInterval(i); r(); } }, 20); });
  const d = spawn(BIN, ['--state', dir, 'run', '--listen', '127.0.0.1:0'], { env: { PATH: process.env.PATH, NOTIFY_SOCKET: sockPath }, stdio: 'ignore' });
  const code = await new Promise((r) => py.on('exit', r));
  d.kill('SIGTERM');
  assert.equal(code, 0);
  assert.match(got, /READY=1/);
});
