// log.js -- the durable event log: one Durable Object (SQLite storage) that
// numbers events, drops duplicates, keeps them for the retention period,
// pushes them in order to synccf, and streams them to pullers.
//
// Everything that changes the log happens inside this object, which workerd
// runs one event at a time, so sequence numbers, dedupe and the push cursor
// need no further locking. An append is acknowledged only after its write is
// durable: the Durable Object's output gate holds the reply until then.

import { DurableObject } from 'cloudflare:workers';
import { signWebhook } from './auth.js';

const utf8 = new TextEncoder();
const byteLength = (s) => utf8.encode(s).length;
const num = (v, d) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? d : Number(v));

export class EventLog extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // AUTOINCREMENT: a sequence number is never reused, even after retention
    // deleted the newest rows' predecessors -- pullers' cursors stay valid.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS events(
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, stored INTEGER NOT NULL)`);
    this.sql.exec('CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)');
    this.clients = new Set();
  }

  meta(k, d) {
    const row = this.sql.exec('SELECT v FROM meta WHERE k = ?', k).toArray()[0];
    return row ? JSON.parse(row.v) : d;
  }

  setMeta(k, v) {
    this.sql.exec('INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', k, JSON.stringify(v));
  }

  // Stores new events, each {id, body: the event's JSON text} -- text, so
  // that exact big integers (JSON.rawJSON) survive the call into this object;
  // dedupe by id. Returns {accepted, duplicates}.
  async append(events) {
    let accepted = 0, duplicates = 0;
    const fresh = [];
    const now = Date.now();
    for (const e of events) {
      // Looked up first: an ignored INSERT would still use up a sequence number.
      if (this.sql.exec('SELECT 1 FROM events WHERE id = ?', e.id).toArray().length) { duplicates++; continue; }
      this.sql.exec('INSERT INTO events(id, body, stored) VALUES (?, ?, ?)', e.id, e.body, now);
      accepted++;
      fresh.push(e.body);
    }
    if (duplicates) this.setMeta('duplicates', this.meta('duplicates', 0) + duplicates);
    this.retain(now);
    if (fresh.length) {
      for (const c of this.clients) this.pump(c);
      if (this.env.EVENTS_QUEUE) await this.enqueue(fresh);
      if (this.env.SYNC_ENDPOINT && !this.meta('push', {}).failed) await this.schedule(0);
    }
    return { accepted, duplicates };
  }

  // The optional Queue gets each new event as its JSON text (contentType
  // text: the exact bytes, which synccf queue reads like any JSON body), in
  // sendBatch calls within Cloudflare's limits: 100 messages and 256 KB a
  // call, 128 KB a message. An event over 128 KB cannot go to a Queue at all:
  // it is counted (status: queue.tooLarge) and still reaches synccf by push
  // and pull. A failed send fails the request, so that the sender retries.
  async enqueue(bodies) {
    const MAX_MSG = 128000, MAX_CALL = 256000, MAX_N = 100;
    let batch = [], bytes = 0, tooLarge = 0;
    const flush = async () => { if (batch.length) await this.env.EVENTS_QUEUE.sendBatch(batch); batch = []; bytes = 0; };
    for (const body of bodies) {
      const n = byteLength(body);
      if (n > MAX_MSG) { tooLarge++; console.warn(JSON.stringify({ msg: 'event too large for a Queue message', bytes: n })); continue; }
      if (batch.length === MAX_N || bytes + n > MAX_CALL) await flush();
      batch.push({ body, contentType: 'text' });
      bytes += n;
    }
    await flush();
    if (tooLarge) this.setMeta('queueTooLarge', this.meta('queueTooLarge', 0) + tooLarge);
  }

  // Retention by age and by count (RETENTION_DAYS, RETENTION_MAX_EVENTS).
  retain(now = Date.now()) {
    const days = num(this.env.RETENTION_DAYS, 7);
    const max = num(this.env.RETENTION_MAX_EVENTS, 100000);
    this.sql.exec('DELETE FROM events WHERE stored < ?', now - days * 86400000);
    this.sql.exec('DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?', max);
  }

  list(after, limit) {
    const rows = this.sql.exec('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?', after, limit + 1).toArray();
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    // JSON text, the stored events spliced in as they are: parsing them here
    // would cost the digits of big integers (see parseJson).
    return `{"events":[${page.map((r) => `{"seq":${r.seq},"event":${r.body}}`).join(',')}],` +
      `"next":${page.length ? page[page.length - 1].seq : after},"more":${more}}`;
  }

  status() {
    const s = this.sql.exec('SELECT count(*) AS n, min(seq) AS oldest, max(seq) AS newest FROM events').one();
    const push = this.meta('push', {});
    const cursor = push.cursor ?? 0;
    const backlog = this.sql.exec('SELECT count(*) AS n FROM events WHERE seq > ?', cursor).one().n;
    return {
      events: s.n, oldestSeq: s.oldest, newestSeq: s.newest, duplicates: this.meta('duplicates', 0), subscribers: this.clients.size,
      queue: { enabled: !!this.env.EVENTS_QUEUE, tooLarge: this.meta('queueTooLarge', 0) },
      push: { enabled: !!this.env.SYNC_ENDPOINT, cursor, backlog, attempts: push.attempts ?? 0,
        lastSuccess: push.lastSuccess ?? null, lastError: push.lastError ?? null, failed: push.failed ?? null },
    };
  }

  // Resumes a push stopped by a refused batch (after fixing the receiver).
  async retryPush() {
    const push = this.meta('push', {});
    delete push.failed;
    push.attempts = 0;
    this.setMeta('push', push);
    await this.schedule(0);
    return this.status();
  }

  async schedule(delayMs) {
    const at = Date.now() + delayMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  // Push: one batch per alarm, in order, never skipping ahead.
  async alarm() {
    this.retain();
    const endpoint = this.env.SYNC_ENDPOINT;
    if (!endpoint) return;
    const push = this.meta('push', {});
    if (push.failed) return;
    const cursor = push.cursor ?? 0;
    const all = this.sql.exec('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
      cursor, num(this.env.PUSH_BATCH, 100)).toArray();
    if (!all.length) return;
    // A batch also stays under PUSH_MAX_BYTES (512 KiB), below the receiver's
    // body limit (1 MiB by default): it would refuse a larger one with 413,
    // and a refused batch stops the push. One event always goes, whatever
    // its size (each is below that limit when it arrives here).
    const maxBytes = num(this.env.PUSH_MAX_BYTES, 512 * 1024);
    let size = 2, k = 0;
    for (; k < all.length; k++) {
      const n = byteLength(all[k].body) + 1;
      if (k > 0 && size + n > maxBytes) break;
      size += n;
    }
    const rows = all.slice(0, k);
    const first = rows[0].seq, last = rows[rows.length - 1].seq;
    const body = `[${rows.map((r) => r.body).join(',')}]`;
    const id = `batch-${first}-${last}`;
    const ts = String(Math.floor(Date.now() / 1000));
    let status = 0, detail = '', retryAfter = null;
    try {
      const res = await fetch(endpoint.replace(/\/+$/, '') + '/v1/events', {
        method: 'POST', body,
        headers: { 'content-type': 'application/cloudevents-batch+json', 'webhook-id': id, 'webhook-timestamp': ts,
          'webhook-signature': await signWebhook(this.env.SYNC_SECRET, id, ts, body) },
      });
      status = res.status;
      detail = (await res.text()).slice(0, 300);
      retryAfter = res.headers.get('retry-after');
    } catch (e) {
      detail = String(e.message || e);
    }
    const now = new Date().toISOString();
    if (status >= 200 && status < 300) {
      this.setMeta('push', { cursor: last, attempts: 0, lastSuccess: now, lastError: push.lastError ?? null });
      if (this.sql.exec('SELECT 1 FROM events WHERE seq > ? LIMIT 1', last).toArray().length)
        await this.schedule(0);
      return;
    }
    const lastError = { at: now, status, detail, batch: id };
    // A stale timestamp is the clocks' disagreement, not the batch's fault:
    // each attempt is signed anew, so it goes through once they agree.
    let reason = null;
    try { reason = JSON.parse(detail).reason; } catch { /* not the receiver's JSON */ }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429 && reason !== 'stale_timestamp') {
      // The receiver refuses this batch for good: stop and show it, rather
      // than retry forever or skip it. POST /v1/push/retry resumes.
      this.setMeta('push', { ...push, cursor, lastError, failed: { batch: id, first, last, status, detail, at: now } });
      return;
    }
    const attempts = (push.attempts ?? 0) + 1;
    const base = num(this.env.PUSH_BACKOFF_MS, 1000), cap = num(this.env.PUSH_MAX_BACKOFF_MS, 300000);
    let delay = Math.min(cap, base * 2 ** (attempts - 1));
    delay = delay / 2 + Math.random() * (delay / 2);
    // The receiver's Retry-After is honoured even past the backoff's cap (up
    // to an hour): it knows better when it can take the batch.
    if (retryAfter && /^\d+$/.test(retryAfter)) delay = Math.max(delay, Math.min(Number(retryAfter) * 1000, 3600000));
    this.setMeta('push', { ...push, cursor, attempts, lastError });
    await this.schedule(delay);
  }

  // Server-Sent Events: everything after the cursor, then live, with heartbeats.
  async fetch(request) {
    const url = new URL(request.url);
    const after = Number(request.headers.get('last-event-id') ?? url.searchParams.get('after') ?? 0) || 0;
    const { readable, writable } = new TransformStream();
    const client = { writer: writable.getWriter(), cursor: after, pumping: false, again: false };
    client.send = (s) => client.writer.write(utf8.encode(s));
    const hb = num(this.env.HEARTBEAT_SECONDS, 15) * 1000;
    client.timer = setInterval(() => client.send(': hb\n\n').catch(() => this.drop(client)), hb);
    this.clients.add(client);
    client.send(': synccf stream\n\n').catch(() => this.drop(client));
    this.pump(client);
    return new Response(readable, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
    });
  }

  drop(client) {
    clearInterval(client.timer);
    this.clients.delete(client);
    client.writer.close().catch(() => {});
  }

  // Sends a client everything after its cursor, in order; a pump already
  // running for it picks up what arrived meanwhile.
  async pump(client) {
    if (client.pumping) { client.again = true; return; }
    client.pumping = true;
    try {
      do {
        client.again = false;
        for (;;) {
          const rows = this.sql.exec('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT 100', client.cursor).toArray();
          if (!rows.length) break;
          for (const r of rows) {
            await client.send(`id: ${r.seq}\nevent: cloudevent\ndata: ${r.body}\n\n`);
            client.cursor = r.seq;
          }
        }
      } while (client.again);
    } catch {
      this.drop(client);
    } finally {
      client.pumping = false;
    }
  }
}
