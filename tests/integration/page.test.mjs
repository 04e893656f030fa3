// The status page in headless Chromium: it renders the events just posted,
// their handler outcomes, the sources and the per-minute chart; a screenshot
// is taken and checked. SCREENSHOT=path keeps it (the README's picture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, post, tempDir, VECTORS } from './lib.mjs';
import { until } from '../../worker/test/helpers.mjs';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => spawnSync(p, ['--version']).status === 0);
const flags = (dir) => ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', `--user-data-dir=${dir}`, '--window-size=1100,900', '--hide-scrollbars'];

test('the status page in headless Chromium shows the events just posted', { skip: !CHROMIUM && 'no chromium' }, async () => {
  const dir = tempDir();
  const cfg = join(dir, 'synccf.yaml');
  writeFileSync(cfg, 'dispatch: { max_attempts: 1 }\nhandlers:\n  - name: notify\n    match: { type: com.cloudflare.notification.* }\n    exec: { argv: [/bin/true] }\n  - name: broken\n    match: { type: dev.synccf.hook.* }\n    exec: { argv: [/bin/false] }\n');
  const d = await startDaemon({ args: ['--config', cfg] });
  try {
    const J = { 'content-type': 'application/json' };
    await post(d.url + '/hooks/notifications', readFileSync(join(VECTORS, 'inputs', 'ddos-l7.json')), J);
    await post(d.url + '/hooks/logpush/http_requests', readFileSync(join(VECTORS, 'inputs', 'http_requests.ndjson.gz')));
    await post(d.url + '/hooks/generic/deploy', JSON.stringify({ id: '<img src=x onerror=alert(1)>', subject: 'site<b>' }), J);
    await until('handlers done', async () => { const t = await (await fetch(d.url + '/')).text(); return t.includes('broken: gave_up') && t.includes('notify: ok'); });

    const dom = spawnSync(CHROMIUM, [...flags(join(dir, 'p1')), '--dump-dom', d.url + '/'], { encoding: 'utf8', timeout: 60000 });
    assert.equal(dom.status, 0, dom.stderr);
    const html = dom.stdout;
    assert.equal((html.match(/<tr class="event">/g) || []).length, 6, 'six events listed');
    assert.match(html, /com\.cloudflare\.notification\.advanced_ddos_attack_l7_alert/);
    assert.match(html, /notify-881103bfeb2018b8609b8452338852a5/);
    assert.match(html, /<span class="run ok">notify: ok<\/span>/);
    assert.match(html, /<span class="run gave_up">broken: gave_up<\/span>/);
    assert.doesNotMatch(html, /<img src=x/, 'event data is escaped');
    assert.match(html, /site&lt;b&gt;/);
    const bars = [...html.matchAll(/data-count="(\d+)"/g)].map((m) => Number(m[1]));
    assert.equal(bars.length, 60);
    assert.equal(bars.reduce((a, b) => a + b, 0), 6, 'the chart counts the events of the last hour');

    const png = join(dir, 'status.png');
    const shot = spawnSync(CHROMIUM, [...flags(join(dir, 'p2')), `--screenshot=${png}`, d.url + '/'], { encoding: 'utf8', timeout: 60000 });
    assert.equal(shot.status, 0, shot.stderr);
    const img = readFileSync(png);
    assert.equal(img.subarray(1, 4).toString(), 'PNG');
    assert.equal(img.readUInt32BE(16), 1100);
    assert.equal(img.readUInt32BE(20), 900);
    assert.ok(img.length > 20000, 'not a blank page');
    if (process.env.SCREENSHOT) copyFileSync(png, process.env.SCREENSHOT);

    // Off the loopback interface it is not served; with --status-page off, not at all.
    const d2 = await startDaemon({ args: ['--status-page', 'off'] });
    try { assert.equal((await fetch(d2.url + '/')).status, 405); } finally { await d2.stop(); }
  } finally { await d.stop(); }
});
