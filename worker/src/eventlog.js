// eventlog.js -- the durable event log: one Durable Object (SQLite storage)
// that numbers events, drops duplicates, keeps them for the retention
// period, streams them to pullers, and schedules their two deliveries: the
// push to synccf (push.js) and the optional Queue (queue.js).
//
// Everything that changes the log happens inside this object, which workerd
// runs one event at a time, so sequence numbers and dedupe need no further
// locking. An append is acknowledged only after its write is durable: the
// Durable Object's output gate holds the reply until then.
//
// Push and the Queue are deliveries from the log, each with its own cursor
// and its own retry time (`next`), sharing the object's one alarm: the alarm
// runs whichever is due and is set again for the earliest still waiting. An
// event stored is therefore delivered later even if the Queue or the
// receiver is down now, and new events arriving meanwhile do not cut a
// backoff short.

import { DurableObject } from 'cloudflare:workers';
import { pushStep } from './push.js';
import { sendToQueue } from './queue.js';
import { num } from './util.js';

const utf8 = new TextEncoder();

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
    // The Queue's cursor starts at the newest event when the binding is
    // added (the events before it are not sent), and is forgotten when it
    // is removed, so that adding it again does not send the whole log.
    if (!this.env.EVENTS_QUEUE) this.sql.exec("DELETE FROM meta WHERE k = 'queue'");
    else if (!this.meta('queue', null)) this.setMeta('queue', { cursor: this.sql.exec('SELECT max(seq) AS m FROM events').one().m ?? 0 });
    this.queueRun = Promise.resolve();
  }

  meta(k, d) {
    const row = this.sql.exec('SELECT v FROM meta WHERE k = ?', k).toArray()[0];
    return row ? JSON.parse(row.v) : d;
  }

  setMeta(k, v) {
    this.sql.exec('INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v', k, JSON.stringify(v));
  }

  // Up to limit stored events after seq, in order: [{seq, body}]. What the
  // deliveries, listings and streams read.
  after(seq, limit) {
    return this.sql.exec('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?', seq, limit).toArray();
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
    if (fresh.length) for (const c of this.clients) this.pump(c);
    // The Queue is sent to before the answer, so that in the common case an
    // acknowledged event is already in it; when that fails the event is
    // stored all the same and the alarm sends it later. A duplicate-only
    // append also drains what an earlier, interrupted one left behind.
    if (this.env.EVENTS_QUEUE) await this.arm(await this.queueStep());
    const push = this.meta('push', {});
    if (fresh.length && this.env.SYNC_ENDPOINT && !push.failed) await this.arm(push.next ?? now);
    return { accepted, duplicates };
  }

  // Sets the alarm for `at` (ms) unless it is set earlier; null: nothing to
  // do. Never at or before now: an alarm set (while one runs) for the running
  // one's own millisecond would be taken for it and cleared when it returns.
  async arm(at) {
    if (at === null || at === undefined) return;
    at = Math.max(Math.ceil(at), Date.now() + 1);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  // One Queue delivery at a time: appends and the alarm may overlap while a
  // send is awaited, and two senders reading one cursor would send twice.
  queueStep() {
    const run = this.queueRun.then(() => sendToQueue(this));
    this.queueRun = run.catch(() => {});
    return run;
  }

  // Retention by age and by count (RETENTION_DAYS, RETENTION_MAX_EVENTS).
  retain(now = Date.now()) {
    const days = num(this.env.RETENTION_DAYS, 7);
    const max = num(this.env.RETENTION_MAX_EVENTS, 100000);
    this.sql.exec('DELETE FROM events WHERE stored < ?', now - days * 86400000);
    this.sql.exec('DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?', max);
  }

  list(after, limit) {
    const rows = this.after(after, limit + 1);
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    // JSON text, the stored events spliced in as they are: parsing them here
    // would cost the digits of big integers (see parseJson).
    return `{"events":[${page.map((r) => `{"seq":${r.seq},"event":${r.body}}`).join(',')}],` +
      `"next":${page.length ? page[page.length - 1].seq : after},"more":${more}}`;
  }

  status() {
    const s = this.sql.exec('SELECT count(*) AS n, min(seq) AS oldest, max(seq) AS newest FROM events').one();
    const backlog = (cursor) => this.sql.exec('SELECT count(*) AS n FROM events WHERE seq > ?', cursor).one().n;
    const when = (ms) => (ms ? new Date(ms).toISOString() : null);
    const push = this.meta('push', {});
    const cursor = push.cursor ?? 0;
    const q = this.env.EVENTS_QUEUE ? this.meta('queue', { cursor: 0 }) : null;
    return {
      events: s.n, oldestSeq: s.oldest, newestSeq: s.newest, duplicates: this.meta('duplicates', 0), subscribers: this.clients.size,
      queue: { enabled: !!q, tooLarge: this.meta('queueTooLarge', 0),
        ...(q ? { cursor: q.cursor, backlog: backlog(q.cursor), attempts: q.attempts ?? 0, lastSuccess: q.lastSuccess ?? null,
          lastError: q.lastError ?? null, nextAttempt: when(q.next) } : {}) },
      push: { enabled: !!this.env.SYNC_ENDPOINT, cursor, backlog: backlog(cursor), attempts: push.attempts ?? 0,
        lastSuccess: push.lastSuccess ?? null, lastError: push.lastError ?? null, nextAttempt: when(push.next), failed: push.failed ?? null },
    };
  }

  // Resumes a push stopped by a refused batch (after fixing the receiver).
  async retryPush() {
    const push = this.meta('push', {});
    delete push.failed;
    delete push.next;
    push.attempts = 0;
    this.setMeta('push', push);
    await this.arm(Date.now());
    return this.status();
  }

  // The deliveries that are due; then the alarm again for the earliest
  // still waiting. (While this runs no alarm is set.)
  async alarm() {
    this.retain();
    const at = [];
    if (this.env.EVENTS_QUEUE) at.push(await this.queueStep());
    if (this.env.SYNC_ENDPOINT) at.push(await pushStep(this));
    const due = at.filter((t) => t !== null);
    if (due.length) await this.arm(Math.min(...due));
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
          const rows = this.after(client.cursor, 100);
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
