/* page.c -- the status page at GET /: recent events with their handler
 * outcomes, each source's health, and events per minute over the last hour.
 *
 * Server-rendered HTML with inline CSS and an inline SVG chart, no external
 * assets, and a few lines of JavaScript that reload it. Everything that comes
 * from events is HTML-escaped: event data is untrusted. */
#include "page.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "metrics.h"
#include "query.h"
#include "synccf.h"

static void esc(struct buf *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': buf_append(out, "&lt;", 4); break;
        case '>': buf_append(out, "&gt;", 4); break;
        case '&': buf_append(out, "&amp;", 5); break;
        case '"': buf_append(out, "&quot;", 6); break;
        case '\'': buf_append(out, "&#39;", 5); break;
        default: buf_append(out, s, 1);
        }
    }
}

static const char *col(sqlite3_stmt *st, int i)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? v : "";
}

/* Events per minute for the last 60 minutes, as an SVG bar chart. */
static void sparkline(sqlite3 *db, struct buf *out)
{
    long counts[60] = {0}, max = 1;
    int64_t now = now_ms();
    char since[TIME_BUF];
    time_format_ms(now - 3600 * 1000, since);
    sqlite3_stmt *st;
    /* Newest first, in arrival order, until an hour back: not a pass over
     * the whole store (received is not indexed, and in schema 4 it is
     * computed by the events view). */
    if (sqlite3_prepare_v2(db, "SELECT received FROM events ORDER BY seq DESC", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW && strcmp(col(st, 0), since) >= 0) {
            int64_t ms;
            if (time_parse_rfc3339(col(st, 0), &ms) != 0) continue;
            long m = (long)((now - ms) / 60000);
            if (m >= 0 && m < 60) counts[59 - m]++;
        }
        sqlite3_finalize(st);
    }
    long total = 0;
    for (int i = 0; i < 60; i++) {
        if (counts[i] > max) max = counts[i];
        total += counts[i];
    }
    buf_printf(out, "<figure id=\"rate\"><svg viewBox=\"0 0 600 80\" width=\"600\" height=\"80\" role=\"img\" "
                    "aria-label=\"events per minute, last hour\">");
    for (int i = 0; i < 60; i++) {
        int h = (int)(counts[i] * 76 / max);
        buf_printf(out, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"8\" height=\"%d\" data-count=\"%ld\"><title>%ld</title></rect>",
                   i * 10, 78 - h, h ? h : 1, counts[i], counts[i]);
    }
    buf_printf(out, "</svg><figcaption>%ld events in the last hour (per minute, oldest left; peak %ld)</figcaption></figure>",
               total, max);
}

void page_render(sqlite3 *db, struct buf *out)
{
    buf_printf(out, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>synccf</title>"
                    "<meta name=\"viewport\" content=\"width=device-width\">"
                    "<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}"
                    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;"
                    "text-align:left;vertical-align:top}code{font-size:12px}.ok{color:#080}.pending{color:#a60}"
                    ".gave_up,.down{color:#c00}.bar{fill:#2a6fdb}</style></head><body>");
    buf_printf(out, "<h1>synccf %s</h1>", SYNCCF_VERSION);
    sparkline(db, out);

    buf_printf(out, "<h2>Sources</h2><table id=\"sources\"><tr><th>source</th><th>state</th><th>last success</th>"
                    "<th>last error</th></tr>");
    json_t *srcs = query_sources(db), *j;
    const char *kind;
    json_object_foreach(srcs, kind, j) {
        const char *cells[] = {kind, json_string_value(json_object_get(j, "state")),
                               json_string_value(json_object_get(j, "last_success")),
                               json_string_value(json_object_get(j, "last_error"))};
        buf_printf(out, "<tr>");
        for (int i = 0; i < 4; i++) {
            buf_printf(out, "<td>");
            esc(out, cells[i]);
            buf_printf(out, "</td>");
        }
        buf_printf(out, "</tr>");
    }
    int nsrc = (int)json_object_size(srcs);
    json_decref(srcs);
    if (!nsrc) buf_printf(out, "<tr><td>receiver</td><td class=\"ok\">listening</td><td></td><td></td></tr>");
    buf_printf(out, "</table>");

    buf_printf(out, "<h2>Recent events</h2><table id=\"events\"><tr><th>received</th><th>type</th><th>subject</th>"
                    "<th>id</th><th>via</th><th>handlers</th></tr>");
    const char *sql =
        "SELECT e.received, e.type, e.subject, e.id, e.via, "
        "(SELECT group_concat(r.handler || ':' || r.state, ' ') FROM runs r WHERE r.seq = e.seq) "
        "FROM events e ORDER BY e.seq DESC LIMIT 25";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            buf_printf(out, "<tr class=\"event\">");
            for (int i = 0; i < 5; i++) {
                buf_printf(out, i == 3 ? "<td><code>" : "<td>");
                esc(out, col(st, i));
                buf_printf(out, i == 3 ? "</code></td>" : "</td>");
            }
            buf_printf(out, "<td>");
            /* "name:state name:state": each with its state as a class. */
            char runs[1024];
            snprintf(runs, sizeof runs, "%s", col(st, 5));
            for (char *save, *r = strtok_r(runs, " ", &save); r; r = strtok_r(NULL, " ", &save)) {
                char *c = strrchr(r, ':');
                const char *state = c ? c + 1 : "";
                if (c) *c = '\0';
                int rs = run_state_parse(state);
                buf_printf(out, "<span class=\"run %s\">", run_state_names[rs == RUN_OK || rs == RUN_GAVE_UP ? rs : RUN_PENDING]);
                esc(out, r);
                buf_printf(out, ": ");
                esc(out, state);
                buf_printf(out, "</span> ");
            }
            buf_printf(out, "</td></tr>");
        }
        sqlite3_finalize(st);
    }
    buf_printf(out, "</table><p><small>Refreshes every 5 s. <a href=\"/metrics\">metrics</a> · "
                    "<a href=\"/readyz\">readiness</a></small></p>"
                    "<script>setTimeout(function(){location.reload()},5000)</script></body></html>");
}
