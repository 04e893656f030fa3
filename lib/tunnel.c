/* tunnel.c -- `synccf tunnel`: runs cloudflared beside the receiver and
 * keeps it running.
 *
 * A quick tunnel (`cloudflared tunnel --url http://127.0.0.1:PORT`) gets a new
 * random https://….trycloudflare.com address each time cloudflared starts; it
 * is read from cloudflared's output, announced, and, when a Notifications
 * webhook destination is configured, written into that destination through
 * Cloudflare's API so alerts follow the tunnel. A named tunnel (token from
 * the config) keeps its hostname. cloudflared is restarted with backoff when
 * it exits, and stopped when synccf stops. */
#include "tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "source.h"
#include "spawn.h"

struct tunnel {
    struct source src; /* first: SOURCE_OWNER */
    const struct config *cfg;
    char bin[1024];
    char local[64];
    char url[256];
    int starts;
    pid_t pid;
};
SOURCE_OWNER(struct tunnel);

static void note(struct tunnel *t)
{
    source_note(&t->src, json_pack("{s:s?,s:i,s:s}", "url", t->url[0] ? t->url : NULL, "starts", t->starts, "local", t->local));
}

/* Points the Notifications webhook destination at the tunnel. */
static void update_destination(struct tunnel *t)
{
    const struct config *c = t->cfg;
    if (!c->notify_webhook_id || !c->api_token || !c->account_id) return;
    char url[2048], msg[240];
    snprintf(url, sizeof url, "%s/client/v4/accounts/%s/alerting/v3/destinations/webhooks/%s", c->api_base, c->account_id,
             c->notify_webhook_id);
    json_t *b = json_pack("{s:s,s:s+}", "name", "synccf", "url", t->url, "/hooks/notifications");
    if (c->notify_secret) json_object_set_new(b, "secret", json_string(c->notify_secret));
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    struct http_resp r;
    json_t *env;
    enum cf_outcome o = cf_call("PUT", url, c->api_token, body, &r, &env, msg, sizeof msg);
    free(body);
    http_resp_free(&r);
    json_decref(env);
    if (o == CF_OK) log_msg(LOG_INFO, "Notifications webhook destination updated", "url", t->url, NULL);
    else {
        snprintf(t->src.last_error, sizeof t->src.last_error, "updating the webhook destination: %.200s", msg);
        log_msg(LOG_ERROR, "cannot update the Notifications webhook destination", "error", msg, NULL);
    }
}

/* cloudflared's environment: only what it needs to reach Cloudflare (proxy
 * and CA settings, locale, home for its own files), never synccf's secrets.
 * A named tunnel's token goes in TUNNEL_TOKEN, which cloudflared reads as
 * --token: on the command line any local user could read it in ps. */
static const char *const passed_env[] = {"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "HTTPS_PROXY", "https_proxy",
                                         "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
                                         "SSL_CERT_FILE", "SSL_CERT_DIR", NULL};
#define ENV_MAX 20

/* Starts cloudflared (spawn.c: its own group, signals reset, no other
 * descriptor of ours) with stdin on /dev/null and its output on a pipe,
 * whose read end goes to *out_fd. */
static pid_t start_cloudflared(struct tunnel *t, int *out_fd)
{
    const char *argv[8];
    int n = 0;
    argv[n++] = t->bin;
    argv[n++] = "tunnel";
    if (t->cfg->tunnel_token) {
        /* Named tunnel: the token selects it; its hostname and the service
         * it forwards to are configured in Cloudflare. */
        argv[n++] = "--no-autoupdate";
        argv[n++] = "run";
    } else {
        argv[n++] = "--url";
        argv[n++] = t->local;
        argv[n++] = "--no-autoupdate";
    }
    argv[n] = NULL;
    /* Built before vfork: the child of a threaded process may not allocate. */
    char *envp[ENV_MAX + 1];
    int ne = 0;
    for (const char *const *k = passed_env; *k && ne < ENV_MAX - 1; k++) {
        const char *v = getenv(*k);
        if (!v) continue;
        size_t len = strlen(*k) + strlen(v) + 2;
        envp[ne] = malloc(len);
        if (envp[ne]) snprintf(envp[ne++], len, "%s=%s", *k, v);
    }
    if (t->cfg->tunnel_token) {
        size_t len = strlen(t->cfg->tunnel_token) + sizeof "TUNNEL_TOKEN=";
        envp[ne] = malloc(len);
        if (envp[ne]) snprintf(envp[ne++], len, "TUNNEL_TOKEN=%s", t->cfg->tunnel_token);
    }
    envp[ne] = NULL;
    char *bin[2] = {t->bin, NULL}; /* already resolved: the only candidate */
    int fds[2] = {-1, -1}, devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = -1;
    if (devnull >= 0 && pipe2(fds, O_CLOEXEC) == 0) {
        devnull = spawn_above_stdio(devnull);
        fds[1] = spawn_above_stdio(fds[1]);
        if (devnull >= 0 && fds[1] >= 0) {
            struct spawn sp = {(char *const *)argv, envp, bin, NULL, devnull, fds[1], -1};
            pid = spawn_start(&sp);
        }
    }
    int saved = errno;
    for (int i = 0; i < ne; i++) {
        explicit_bzero(envp[i], strlen(envp[i]));
        free(envp[i]);
    }
    if (devnull >= 0) close(devnull);
    if (fds[1] >= 0) close(fds[1]);
    if (pid < 0) {
        if (fds[0] >= 0) close(fds[0]);
        errno = saved;
        return -1;
    }
    *out_fd = fds[0];
    return pid;
}

static void stop_child(pid_t pid)
{
    kill(-pid, SIGTERM);
    for (int i = 0; i < 40; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void *run(void *arg)
{
    struct tunnel *t = arg;
    regex_t re;
    regcomp(&re, "https://[a-z0-9-]+\\.trycloudflare\\.com", REG_EXTENDED);
    int failures = 0;
    while (!source_stopping(&t->src)) {
        int fd;
        t->pid = start_cloudflared(t, &fd);
        if (t->pid < 0) {
            snprintf(t->src.last_error, sizeof t->src.last_error, "cannot start %.150s: %s", t->bin, strerror(errno));
            break;
        }
        t->starts++;
        int64_t started = now_ms();
        t->src.state = SOURCE_STARTING;
        note(t);
        log_msg(LOG_INFO, "cloudflared started", "bin", t->bin, "local", t->local, NULL);
        char line[2048];
        size_t ll = 0;
        int exited = 0, status = 0;
        while (!exited && !source_stopping(&t->src)) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 200) > 0) {
                char buf[1024];
                ssize_t k = read(fd, buf, sizeof buf);
                for (ssize_t i = 0; i < k; i++) {
                    if (buf[i] != '\n' && ll < sizeof line - 1) {
                        line[ll++] = buf[i];
                        continue;
                    }
                    line[ll] = '\0';
                    ll = 0;
                    regmatch_t m;
                    if (!t->cfg->tunnel_token && regexec(&re, line, 1, &m, 0) == 0) {
                        snprintf(t->url, sizeof t->url, "%.*s", (int)(m.rm_eo - m.rm_so), line + m.rm_so);
                        t->src.state = SOURCE_CONNECTED;
                        time_format_ms(now_ms(), t->src.last_success);
                        log_msg(LOG_INFO, "tunnel up: give Cloudflare this URL", "url", t->url, "notifications",
                                "/hooks/notifications", "logpush", "/hooks/logpush/<dataset>", NULL);
                        printf("public URL: %s\n  Notifications webhook: %s/hooks/notifications\n  Logpush: %s/hooks/logpush/<dataset>\n",
                               t->url, t->url, t->url);
                        fflush(stdout);
                        update_destination(t);
                        note(t);
                    } else if (t->cfg->tunnel_token && strstr(line, "Registered tunnel connection") &&
                               t->src.state != SOURCE_CONNECTED) {
                        t->src.state = SOURCE_CONNECTED;
                        time_format_ms(now_ms(), t->src.last_success);
                        log_msg(LOG_INFO, "named tunnel connected: its hostname and service are set in Cloudflare", "service",
                                t->local, NULL);
                        note(t);
                    }
                }
                if (k == 0) {
                    close(fd);
                    fd = -1;
                    waitpid(t->pid, &status, 0);
                    exited = 1;
                }
            }
            if (!exited && waitpid(t->pid, &status, WNOHANG) == t->pid) exited = 1;
        }
        if (fd >= 0) close(fd);
        if (!exited) {
            stop_child(t->pid);
            break;
        }
        kill(-t->pid, SIGKILL); /* anything it left in its group */
        failures = now_ms() - started > 60000 ? 1 : failures + 1;
        snprintf(t->src.last_error, sizeof t->src.last_error, "cloudflared exited (%s %d)",
                 WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        t->src.state = SOURCE_RESTARTING;
        t->url[0] = '\0';
        note(t);
        log_msg(LOG_WARN, "cloudflared exited; restarting", "error", t->src.last_error, NULL);
        source_nap(&t->src, source_backoff(&t->src, failures, 1000, 30000));
    }
    regfree(&re);
    t->src.state = SOURCE_STOPPED;
    note(t);
    return NULL;
}

struct tunnel *tunnel_start(struct store *st, const struct config *cfg, unsigned port, char *err, size_t errlen)
{
    struct tunnel *t = source_alloc(sizeof *t, "tunnel", err, errlen);
    if (!t) return NULL;
    const char *want = cfg->cloudflared ? cfg->cloudflared : "cloudflared";
    if (spawn_find(want, t->bin, sizeof t->bin) != 0) { /* the config's path, else found on PATH */
        snprintf(err, errlen,
                 "cannot find cloudflared (%s): install it from "
                 "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ "
                 "(Debian: the cloudflare-main apt repository, package cloudflared), or set cloudflared: /path/to/it",
                 want);
        free(t);
        return NULL;
    }
    snprintf(t->local, sizeof t->local, "http://127.0.0.1:%u", port);
    t->cfg = cfg;
    return source_launch(t, "tunnel", st, run, NULL, err, errlen);
}

void tunnel_stop(struct tunnel *t) { source_close(t, NULL); }
