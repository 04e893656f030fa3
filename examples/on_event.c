/* on_event.c -- embedding libsynccf: a program with its own handler.
 *
 * It receives Cloudflare events like `synccf receive` (same routes, same
 * store), and for every Pages deployment prints a line; a real program would
 * rebuild, notify, or refresh something here. Failures (non-zero returns) are
 * retried with backoff, also after a restart.
 *
 *   build/examples/on_event [--state DIR] [--listen HOST:PORT]
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <synccf.h>

static int on_deploy(const char *event_json, void *arg)
{
    (void)arg;
    /* The event is CloudEvents JSON; parse it with the JSON library of your
     * choice. Printing it is enough for this example. */
    printf("deployment event: %s\n", event_json);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    char err[512];
    synccf *s = synccf_open(NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "on_event: %s\n", err);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *key = strcmp(argv[i], "--state") == 0 ? "state" : strcmp(argv[i], "--listen") == 0 ? "listen" : NULL;
        if (!key || synccf_set(s, key, argv[i + 1], err, sizeof err) != 0) {
            fprintf(stderr, "usage: on_event [--state DIR] [--listen HOST:PORT]\n");
            synccf_close(s);
            return 2;
        }
    }
    synccf_on_event(s, "print-deploys", "com.cloudflare.pages.deployment.*", on_deploy, NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    int rc = synccf_start(s, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "on_event: %s\n", err);
        synccf_close(s);
        return rc;
    }
    printf("listening on port %u\n", synccf_port(s));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    synccf_close(s);
    return 0;
}
