// Authentication on every route, the record filter, and the refusal to
// listen beyond loopback without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, post, storedEvents, BIN, VECTORS, tempDir } from './lib.mjs';

const notification = readFileSync(join(VECTORS, 'inputs', 'ddos-l7.json'));
const logpush = readFileSync(join(VECTORS, 'inputs', 'http_requests.ndjson.gz'));

test('configured secrets are required, compared exactly', async () => {
  const d = await startDaemon({ env: { SYNCCF_NOTIFY_SECRET: 'n-secret', SYNCCF_HOOK_TOKEN: 'h-token' } });
  try {
    const json = { 'content-type': 'application/json' };
    assert.equal((await post(d.url + '/hooks/notifications', notification, json)).status, 401);
    assert.equal((await post(d.url + '/hooks/notifications', notification, { ...json, 'cf-webhook-auth': 'n-secreT' })).status, 401);
    assert.equal((await post(d.url + '/hooks/notifications', notification, { ...json, 'cf-webhook-auth': 'n-secret2' })).status, 401);
    assert.equal((await post(d.url + '/hooks/notifications', notification, { ...json, 'cf-webhook-auth': 'n-secret' })).status, 200);
    assert.equal((await post(d.url + '/hooks/logpush/http_requests', logpush, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await post(d.url + '/hooks/logpush/http_requests', logpush, { authorization: 'h-token' })).status, 401);
    assert.equal((await post(d.url + '/hooks/logpush/http_requests', logpush, { authorization: 'Bearer h-token' })).status, 200);
    assert.equal((await post(d.url + '/hooks/generic/ci', '{"id":"1"}', { ...json, authorization: 'Bearer nope' })).status, 401);
    assert.equal((await post(d.url + '/hooks/generic/ci', '{"id":"1"}', { ...json, authorization: 'Bearer h-token' })).status, 200);
    assert.equal((await storedEvents(d.state)).length, 1 + 4 + 1);
  } finally { await d.stop(); }
});

test('the record filter keeps only matching Logpush records', async () => {
  const d = await startDaemon({ args: ['--filter', 'http_requests.EdgeResponseStatus=5*'] });
  try {
    const res = await post(d.url + '/hooks/logpush/http_requests', logpush);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { accepted: 1, duplicates: 0, rejected: 0, filtered: 3 });
    const [only] = await storedEvents(d.state);
    assert.equal(only.data.EdgeResponseStatus, 522);
  } finally { await d.stop(); }
});

test('refuses a non-loopback address unless every route is authenticated', () => {
  const r = spawnSync(BIN, ['--state', tempDir(), 'receive', '--listen', '0.0.0.0:0'], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0:0/);
});

test('bad flags are usage errors (exit 2)', () => {
  for (const args of [['receive', '--max-body', 'lots'], ['receive', '--filter', 'nope'], ['receive', '--bogus'], ['frobnicate']]) {
    const r = spawnSync(BIN, ['--state', tempDir(), ...args], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  }
});
