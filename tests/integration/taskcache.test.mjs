// The task-cache handler against go-task as it is (v3.44 - v3.54), through the
// real daemon: a Taskfile project in a temp dir with remote includes (a port,
// a root-level file, a query string), labels, wildcard tasks, both spellings
// of fingerprint names (go-task <= 3.51 and >= 3.52), the timestamp method,
// a remote cache moved by taskrc and by the environment, and an absolute
// temp dir. Cache keys are computed here independently, checked first
// against go-task's own vectors (tests/vectors/go-task/names-and-keys.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname, basename } from 'node:path';
import { startDaemon, post, cli, tempDir, VECTORS, until } from './lib.mjs';

const json = { 'content-type': 'application/json' };
const pagesSuccess = readFileSync(join(VECTORS, 'inputs', 'pages-deployment-success.json'));
const PAGES_ID = 'pages-3b6c1f0e-2a4d-4c5e-8f9a-b0c1d2e3f4a5-success';
const goTask = JSON.parse(readFileSync(join(VECTORS, 'go-task', 'names-and-keys.json'), 'utf8'));

// go-task's HTTPNode.CacheKey, from Go's url and filepath semantics.
function cacheKey(url) {
  const host = url.replace(/^https?:\/\//, '').split(/[/?#]/)[0].replace(/^.*@/, '');
  const path = decodeURIComponent(url.replace(/^https?:\/\/[^/?#]*/, '').split(/[?#]/)[0]);
  const i = path.lastIndexOf('/');
  const file = path.slice(i + 1);
  const dir = i < 0 ? '' : path.slice(0, i).replace(/\/+$/, '');
  const lastDir = i < 0 ? '.' : dir === '' ? '/' : dir.slice(dir.lastIndexOf('/') + 1);
  const prefix = lastDir.length > 1 ? `${lastDir}.${file}` : file;
  return `http.${host}.${prefix}.${createHash('sha256').update(url).digest('hex')}`;
}

// go-task's normalizeFilename, >= 3.52 and <= 3.51.
const normalize = (s) => [...s].map((c) => (/^[A-Za-z0-9]$/.test(c) ? c : '-')).join('');
const normalizeLegacy = (s) => [...s].map((c) => (/^[A-z0-9]$/.test(c) ? c : '-')).join('');

test('the oracle agrees with go-task\'s own key and name vectors', () => {
  for (const [url, key] of goTask.cache_keys) assert.equal(cacheKey(url), key, url);
  for (const c of goTask.normalize) {
    assert.equal(normalize(c.in), c.current, c.in);
    assert.equal(normalizeLegacy(c.in), c.legacy, c.in);
  }
});

function put(path, content = 'x') {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

async function deliver(cfgText) {
  const cfgDir = tempDir();
  const cfg = join(cfgDir, 'synccf.yaml');
  writeFileSync(cfg, cfgText);
  return cfg;
}

async function runOnce(cfg, env) {
  const d = await startDaemon({ args: ['--config', cfg], env });
  try {
    const res = await post(d.url + '/hooks/notifications', pagesSuccess, json);
    assert.equal(res.status, 200, res.text);
    const runs = await until('the run', async () => {
      const r = JSON.parse(await cli(d.state, 'events', 'show', PAGES_ID, '--json')).runs;
      return r.length && r.every((x) => x.state !== 'pending') && r;
    });
    assert.equal(runs.length, 1);
    assert.equal(runs[0].state, 'ok', JSON.stringify(runs[0]));
    return runs[0];
  } finally { await d.stop(); }
}

test('exact keys from the Taskfile\'s includes, labels, wildcards, both name spellings, a taskrc-moved remote cache, an absolute temp dir', async () => {
  const top = tempDir('synccf-gotask-');
  const proj = join(top, 'marketing');
  const home = join(top, 'home');
  const shared = join(top, 'task-tmp');
  mkdirSync(home, { recursive: true });
  const urls = {
    site: 'https://marketing-site.pages.dev/taskfiles/Taskfile.yml',
    ported: 'https://marketing-site.pages.dev:8443/ci/Taskfile.yml',
    root: 'https://marketing-site.pages.dev/Taskfile.yml',
    query: 'https://docs.example.com/Taskfile.yml?ref=v2&x=1',
    other: 'https://other.example.org/shared/Taskfile.yml',
  };
  put(join(proj, 'Taskfile.yml'), `version: '3'
includes:
  site: ${urls.site}
  ported:
    taskfile: ${urls.ported}
  root: ${urls.root}
  query: '${urls.query}'
  other: ${urls.other}
tasks:
  build_app:
    label: 'app[release]'
    cmds: [echo]
  'deploy:*':
    label: 'deploy {{index .MATCH 0}}'
  'gen:*':
    cmds: [echo]
  lint: {}
`);
  // remote.cache-dir in the project's .taskrc.yml, relative to the Taskfile's dir
  put(join(proj, '.taskrc.yml'), 'remote:\n  cache-dir: .cache/task\n');
  const remote = join(proj, '.cache', 'task', 'remote');
  const keys = Object.fromEntries(Object.entries(urls).map(([k, u]) => [k, cacheKey(u)]));
  assert.match(keys.ported, /^http\.marketing-site\.pages\.dev:8443\.ci\.Taskfile\.yml\.[0-9a-f]{64}$/);
  assert.match(keys.root, /^http\.marketing-site\.pages\.dev\.Taskfile\.yml\.[0-9a-f]{64}$/);
  assert.match(keys.query, /^http\.docs\.example\.com\.Taskfile\.yml\.[0-9a-f]{64}$/);
  const decoy = `http.marketing-site.pages.dev.taskfiles.Taskfile.yml.${'0'.repeat(64)}`;
  for (const k of [...Object.values(keys), decoy]) for (const ext of ['yaml', 'timestamp', 'checksum']) put(join(remote, `${k}.${ext}`), ext);
  put(join(proj, '.task', 'remote', `${keys.site}.yaml`)); // where go-task no longer looks

  // TASK_TEMP_DIR absolute (the daemon's environment): fingerprints under <abs>/<project name>/
  const fp = join(shared, basename(proj));
  const fpFiles = ['checksum/app-release-', 'checksum/app[release]', 'checksum/build-app', 'checksum/build_app',
    'checksum/deploy-prod', 'checksum/gen-api', 'checksum/gen-docs', 'checksum/lint'];
  for (const f of fpFiles) put(join(fp, f), 'fp\n');
  put(join(shared, 'other-project', 'checksum', 'build-app'), 'fp\n');

  const cfg = await deliver(`
handlers:
  - name: site
    match: { type: com.cloudflare.pages.deployment.success }
    task_cache:
      dir: ${proj}
      hosts: [docs.example.com]
      tasks: [build_app, "deploy:prod", "gen:api"]
`);
  const run = await runOnce(cfg, { HOME: home, TASK_TEMP_DIR: shared });
  assert.equal(run.detail.remote, 'exact');
  assert.equal(run.detail.remote_dir, remote);
  assert.equal(run.detail.fingerprint_dir, fp);
  const expected = [
    ...['site', 'ported', 'root', 'query'].flatMap((k) => [`${remote}/${keys[k]}.yaml`, `${remote}/${keys[k]}.timestamp`]),
    ...['app-release-', 'app[release]', 'build-app', 'build_app', 'deploy-prod', 'gen-api'].map((f) => `${fp}/checksum/${f}`),
  ].sort();
  assert.deepEqual([...run.detail.removed].sort(), expected);
  for (const k of Object.values(keys)) assert.ok(existsSync(join(remote, `${k}.checksum`)), 'trust records kept');
  assert.ok(existsSync(join(remote, `${keys.other}.yaml`)), 'an include of another host stays');
  assert.ok(existsSync(join(remote, `${decoy}.yaml`)), 'exact keys, not host prefixes');
  assert.ok(existsSync(join(proj, '.task', 'remote', `${keys.site}.yaml`)), 'nothing outside the moved cache');
  assert.ok(existsSync(join(fp, 'checksum', 'gen-docs')));
  assert.ok(existsSync(join(fp, 'checksum', 'lint')));
  assert.ok(existsSync(join(shared, 'other-project', 'checksum', 'build-app')), 'another project\'s fingerprints stay');
});

test('timestamp method; the rule\'s env moves the remote cache over the daemon\'s; no Taskfile: prefix matching', async () => {
  const top = tempDir('synccf-gotask-');
  const proj = join(top, 'site');
  const site = cacheKey('https://marketing-site.pages.dev/taskfiles/Taskfile.yml');
  const ruleCache = join(top, 'rule-cache');
  const daemonCache = join(top, 'daemon-cache');
  for (const base of [ruleCache, daemonCache]) for (const ext of ['yaml', 'timestamp']) put(join(base, 'remote', `${site}.${ext}`));
  for (const f of ['timestamp/gen--', 'timestamp/gen-api', 'timestamp/build_app', 'timestamp/build-app', 'timestamp/lint', 'checksum/gen-api'])
    put(join(proj, '.task', f));
  put(join(proj, 'dist', 'app.js'), 'built\n');

  // No Taskfile to read: remote entries are matched by host ("prefix"), and
  // fingerprints by the names as given (a wildcard task's declared name given as such).
  const cfg = await deliver(`
handlers:
  - name: site
    match: { type: com.cloudflare.pages.deployment.success }
    task_cache:
      dir: ${proj}
      env: { TASK_REMOTE_CACHE_DIR: ${ruleCache} }
      method: timestamp
      tasks: [build_app, "gen:*"]
      generates: [dist/*]
`);
  const run = await runOnce(cfg, { TASK_REMOTE_CACHE_DIR: daemonCache });
  assert.equal(run.detail.remote, 'prefix');
  assert.equal(run.detail.remote_dir, join(ruleCache, 'remote'));
  assert.ok(!existsSync(join(ruleCache, 'remote', `${site}.yaml`)));
  assert.ok(existsSync(join(daemonCache, 'remote', `${site}.yaml`)), 'the rule\'s env wins over the daemon\'s');
  for (const f of ['gen--', 'gen-api', 'build_app', 'build-app']) assert.ok(!existsSync(join(proj, '.task', 'timestamp', f)), f);
  assert.ok(existsSync(join(proj, '.task', 'timestamp', 'lint')));
  assert.ok(existsSync(join(proj, '.task', 'checksum', 'gen-api')), 'method timestamp leaves checksum/ alone');
  assert.deepEqual(run.detail.aged, [join(proj, 'dist', 'app.js')]);
});
