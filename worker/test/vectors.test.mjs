// The shared vectors (tests/vectors/) through the Worker's normalization,
// running inside workerd: byte-for-byte the events the C side produces.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Miniflare } from 'miniflare';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKER_DIR, ROOT } from './helpers.mjs';

// A test Worker that imports the production module and exposes it.
const harness = `
import { normNotification, normGeneric, normLogpush, parseJson, acceptEvent, checkEvent } from './src/normalize.js';
export default {
  async fetch(request) {
    const u = new URL(request.url);
    // Events travel back to node as JSON text made here: node's JSON.parse
    // would drop the digits of big integers on both sides of the comparison
    // and hide a difference. /expected writes a vector's expected events.
    // (Its own exact reading, not the module's parseJson, which is under test.)
    if (u.pathname === '/expected') {
      const exact = (k, v, c) => (/^-?\\d+$/.test(c?.source ?? '') && !Number.isSafeInteger(v) ? JSON.rawJSON(c.source) : v);
      return Response.json(JSON.parse(await request.text(), exact).expected.map((e) => JSON.stringify(e)));
    }
    const o = { via: u.searchParams.get('via'), receivedMs: Date.parse(u.searchParams.get('received')) };
    const kind = u.searchParams.get('kind');
    if (kind === 'logpush') {
      const r = await normLogpush(u.searchParams.get('dataset'), request.body, o);
      return Response.json({ ...r, events: r.events.map((e) => JSON.stringify(e)), checks: r.events.map(checkEvent) });
    }
    if (kind === 'cloudevents') {
      const verdicts = [], events = [];
      for (const e of parseJson(await request.text())) {
        const why = acceptEvent(e, o);
        verdicts.push(why);
        if (!why) events.push(JSON.stringify(e));
      }
      return Response.json({ events, verdicts, rejected: verdicts.filter(Boolean).length });
    }
    const raw = new Uint8Array(await request.arrayBuffer());
    const body = parseJson(new TextDecoder().decode(raw));
    const e = kind === 'notification' ? await normNotification(body, o) : await normGeneric(u.searchParams.get('name'), raw, body, o);
    return Response.json({ events: e ? [JSON.stringify(e)] : [], rejected: 0, checks: e ? [checkEvent(e)] : [] });
  },
};`;

let mf, url;
before(async () => {
  mf = new Miniflare({
    modules: [
      { type: 'ESModule', path: join(WORKER_DIR, 'harness.js'), contents: harness },
      { type: 'ESModule', path: join(WORKER_DIR, 'src', 'normalize.js') },
    ],
    modulesRoot: WORKER_DIR,
    compatibilityDate: '2025-09-01',
  });
  url = await mf.ready;
});
after(() => mf.dispose());

const dir = join(ROOT, 'tests', 'vectors');
const vectors = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

for (const name of vectors) {
  const v = JSON.parse(readFileSync(join(dir, name), 'utf8'));
  // xplat events, audit entries and queue messages reach synccf without the
  // Worker (receive, poll, queue): those vectors are the C side's alone.
  test(name, { skip: ['notification', 'logpush', 'generic', 'cloudevents'].includes(v.kind) ? false : 'C side only' }, async () => {
    const q = new URLSearchParams({ kind: v.kind, via: v.via, received: v.received, dataset: v.dataset ?? '', name: v.name ?? '' });
    const res = await mf.dispatchFetch(`${url}?${q}`, { method: 'POST', body: readFileSync(join(dir, v.input)) });
    const out = await res.json();
    assert.equal(res.status, 200);
    assert.equal(out.rejected, v.rejected);
    if (v.verdicts) assert.deepEqual(out.verdicts, v.verdicts.map((x) => x.error));
    // Every event the Worker makes passes the checks the receiver applies.
    else assert.ok(out.checks.every((c) => c === null), JSON.stringify(out.checks));
    const want = await (await mf.dispatchFetch(new URL('/expected', url), { method: 'POST', body: readFileSync(join(dir, name)) })).json();
    assert.deepEqual(out.events, want);
  });
}
