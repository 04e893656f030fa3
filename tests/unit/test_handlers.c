/* test_handlers.c -- the task-cache and exec handlers on their own: go-task's
 * name normalization, which cache files each rule removes, the timestamp
 * method, symlinks and traversal attempts; exec's stdin, environment,
 * timeouts, output tail and failure reporting. */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/handler.h"
#include "testutil.h"

static char root[256];

static void sh(const char *fmt, const char *a)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, a, a, a);
    assert_int_equal(system(cmd), 0);
}

static int exists(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static void touch(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
}

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int setup(void **st)
{
    (void)st;
    snprintf(root, sizeof root, "/tmp/synccf-handlers-%d", (int)getpid());
    sh("rm -rf %s && mkdir -p %s/.task/remote %s/.task/checksum %s/.task/timestamp", root);
    static const char *const hosts[] = {"marketing-site.pages.dev.taskfiles.Taskfile.yml",
                                        "3b6c1f0e.marketing-site.pages.dev.Taskfile.yml",
                                        "evil-marketing-site.pages.dev.Taskfile.yml",
                                        "docs.example.com.shared.Taskfile.yml", "other.pages.dev.Taskfile.yml"};
    static const char *const exts[] = {"yaml", "timestamp", "checksum"};
    for (size_t h = 0; h < 5; h++)
        for (size_t e = 0; e < 3; e++) {
            char rel[256];
            snprintf(rel, sizeof rel, ".task/remote/http.%s." SHA ".%s", hosts[h], exts[e]);
            touch(rel);
        }
    touch(".task/remote/notes.txt"); /* not go-task's: never touched unless remote_all */
    touch(".task/checksum/build");
    touch(".task/checksum/deploy-prod");
    touch(".task/checksum/gen-api");
    touch(".task/timestamp/build");
    touch("outside-canary");
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    sh("rm -rf %s", root);
    return 0;
}

static json_t *pages_event(const char *project)
{
    return json_pack("{s:s,s:s}", "type", "com.cloudflare.pages.deployment.success", "subject", project);
}

static size_t removed(struct handler_result *r) { return json_array_size(json_object_get(r->detail, "removed")); }

static void test_normalize_name(void **st)
{
    (void)st;
    static const char *const cases[][2] = {
        {"build", "build"},        {"deploy:prod", "deploy-prod"}, {"gen/api", "gen-api"},
        {"a.b c", "a-b-c"},        {"[x]\\^_`", "-x-----"},     {"{}|~", "----"},
        {"../../etc", "------etc"}, {"caf\xc3\xa9", "caf-"},       {"bad\xff", "bad-"},
        {"\xe2\x82\xac" "1", "-1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[64];
        taskcache_normalize_name(cases[i][0], out);
        assert_string_equal(out, cases[i][1]);
    }
}

static void test_remote_default(void **st)
{
    (void)st;
    char *tasks[] = {"build", "deploy:prod", NULL};
    struct taskcache_rule r = {.dir = root, .remote = 1, .tasks = tasks};
    json_t *ev = pages_event("marketing-site");
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_false(exists(".task/remote/http.marketing-site.pages.dev.taskfiles.Taskfile.yml." SHA ".yaml"));
    assert_false(exists(".task/remote/http.marketing-site.pages.dev.taskfiles.Taskfile.yml." SHA ".timestamp"));
    assert_true(exists(".task/remote/http.marketing-site.pages.dev.taskfiles.Taskfile.yml." SHA ".checksum"));
    assert_false(exists(".task/remote/http.3b6c1f0e.marketing-site.pages.dev.Taskfile.yml." SHA ".yaml"));
    assert_true(exists(".task/remote/http.evil-marketing-site.pages.dev.Taskfile.yml." SHA ".yaml"));
    assert_true(exists(".task/remote/http.other.pages.dev.Taskfile.yml." SHA ".yaml"));
    assert_true(exists(".task/remote/http.docs.example.com.shared.Taskfile.yml." SHA ".yaml"));
    assert_false(exists(".task/checksum/build"));
    assert_false(exists(".task/checksum/deploy-prod"));
    assert_true(exists(".task/checksum/gen-api"));
    assert_true(exists(".task/timestamp/build")); /* method checksum leaves timestamp/ alone */
    assert_int_equal(removed(&res), 6);
    handler_result_free(&res);

    /* Idempotent: the same run again removes nothing and succeeds. */
    struct handler_result again = {0};
    taskcache_run(&r, ev, &again);
    assert_true(again.ok);
    assert_int_equal(removed(&again), 0);
    handler_result_free(&again);
    json_decref(ev);
}

static void test_remote_options(void **st)
{
    (void)st;
    char *hosts[] = {"docs.*.com", NULL};
    struct taskcache_rule r = {.dir = root, .remote = 1, .remote_checksum = 1, .hosts = hosts};
    json_t *ev = json_pack("{s:s}", "type", "dev.synccf.hook.deploy"); /* not Pages: listed hosts only */
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_int_equal(removed(&res), 3);
    assert_false(exists(".task/remote/http.docs.example.com.shared.Taskfile.yml." SHA ".checksum"));
    assert_true(exists(".task/remote/http.marketing-site.pages.dev.taskfiles.Taskfile.yml." SHA ".yaml"));
    handler_result_free(&res);

    struct taskcache_rule all = {.dir = root, .remote = 1, .remote_all = 1};
    struct handler_result res2 = {0};
    taskcache_run(&all, ev, &res2);
    assert_true(res2.ok);
    assert_false(exists(".task/remote/notes.txt"));
    assert_false(exists(".task/remote/http.other.pages.dev.Taskfile.yml." SHA ".checksum"));
    assert_true(exists(".task/checksum/build"));
    handler_result_free(&res2);
    json_decref(ev);
}

static void test_hostile_input(void **st)
{
    (void)st;
    char *tasks[] = {"../../outside-canary", "../outside-canary", NULL};
    struct taskcache_rule r = {.dir = root, .remote = 1, .tasks = tasks};
    static const char *const subjects[] = {"../../etc", "a/b", "*", "[a-z]*", "", ".."};
    for (size_t i = 0; i < sizeof subjects / sizeof *subjects; i++) {
        json_t *ev = pages_event(subjects[i]);
        struct handler_result res = {0};
        taskcache_run(&r, ev, &res);
        assert_true(res.ok);
        assert_int_equal(removed(&res), 0);
        handler_result_free(&res);
        json_decref(ev);
    }
    assert_true(exists("outside-canary"));
    assert_true(exists(".task/remote/http.other.pages.dev.Taskfile.yml." SHA ".yaml"));

    /* A symlink in the cache pointing outside is removed as a link only. */
    char link[512], target[512];
    snprintf(link, sizeof link, "%s/.task/remote/http.other.pages.dev.Taskfile.yml." SHA ".timestamp", root);
    snprintf(target, sizeof target, "%s/outside-canary", root);
    unlink(link);
    assert_int_equal(symlink(target, link), 0);
    json_t *ev = pages_event("other");
    struct handler_result res = {0};
    struct taskcache_rule r2 = {.dir = root, .remote = 1};
    taskcache_run(&r2, ev, &res);
    assert_true(res.ok);
    assert_false(exists(".task/remote/http.other.pages.dev.Taskfile.yml." SHA ".timestamp"));
    assert_true(exists("outside-canary"));
    handler_result_free(&res);
    json_decref(ev);

    /* generates patterns may not leave the directory */
    char *gen[] = {"../*", NULL};
    struct taskcache_rule r3 = {.dir = root, .method = TASKCACHE_TIMESTAMP, .generates = gen};
    struct handler_result res3 = {0};
    taskcache_run(&r3, ev = pages_event("x"), &res3);
    assert_false(res3.ok);
    assert_true(res3.permanent);
    handler_result_free(&res3);
    json_decref(ev);
}

/* A directory on the way to the cache (.task, .task/checksum, .task/remote,
 * .task/timestamp) that is a symlink is never followed: the files where it
 * points survive even a rule that removes everything. */
static void test_symlinked_dirs(void **st)
{
    (void)st;
    static const char *const links[] = {".task", ".task/checksum", ".task/remote", ".task/timestamp"};
    static const char *const victims[] = {"victim/build", "victim/notes.txt",
                                          "victim/http.other.pages.dev.Taskfile.yml." SHA ".yaml",
                                          "victim/checksum/build", "victim/remote/notes.txt", "victim/timestamp/build"};
    char *tasks[] = {"build", "gen-*", NULL};
    for (size_t l = 0; l < sizeof links / sizeof *links; l++) {
        sh("rm -rf %s/victim && mkdir -p %s/victim/checksum %s/victim/remote %s/victim/timestamp", root);
        for (size_t v = 0; v < sizeof victims / sizeof *victims; v++) touch(victims[v]);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "rm -rf %s/%s && ln -s %s/victim %s/%s", root, links[l], root, root, links[l]);
        assert_int_equal(system(cmd), 0);
        struct taskcache_rule rules[] = {
            {.dir = root, .remote = 1, .remote_all = 1, .all_tasks = 1},
            {.dir = root, .remote = 1, .remote_all = 1, .tasks = tasks},
            {.dir = root, .remote = 1, .method = TASKCACHE_TIMESTAMP, .tasks = tasks},
        };
        for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
            json_t *ev = pages_event("other");
            struct handler_result res = {0};
            taskcache_run(&rules[i], ev, &res);
            handler_result_free(&res);
            json_decref(ev);
            for (size_t v = 0; v < sizeof victims / sizeof *victims; v++)
                if (!exists(victims[v])) fail_msg("%s removed through the link %s (rule %zu)", victims[v], links[l], i);
        }
        /* Back to real directories for the next link. */
        snprintf(cmd, sizeof cmd, "rm -f %s/%s && mkdir -p %s/.task/checksum %s/.task/remote %s/.task/timestamp", root,
                 links[l], root, root, root);
        assert_int_equal(system(cmd), 0);
    }
}

static void test_timestamp_method(void **st)
{
    (void)st;
    sh("mkdir -p %s/dist && echo built > %s/dist/app.js && echo src > %s/main.go", root);
    char *tasks[] = {"build", NULL};
    char *gen[] = {"dist/*", NULL};
    struct taskcache_rule r = {.dir = root, .temp_dir = ".task", .method = TASKCACHE_TIMESTAMP, .tasks = tasks, .generates = gen};
    json_t *ev = pages_event("x");
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_false(exists(".task/timestamp/build"));
    assert_true(exists(".task/checksum/build")); /* the other method's fingerprint stays */
    char p[512];
    snprintf(p, sizeof p, "%s/dist/app.js", root);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mtime, 0);
    assert_int_equal(json_array_size(json_object_get(res.detail, "aged")), 1);
    size_t len;
    char *content = read_file(p, &len);
    assert_string_equal(content, "built\n"); /* content untouched */
    free(content);
    handler_result_free(&res);

    /* An absolute temp_dir (TASK_TEMP_DIR) is honoured; go-task keeps the
     * fingerprints below it under the project's name (root's base name). */
    char tmp[400], fp[700];
    snprintf(tmp, sizeof tmp, "%s/elsewhere", root);
    snprintf(fp, sizeof fp, "%s%s", tmp, strrchr(root, '/'));
    sh("mkdir -p %s/checksum && touch %s/checksum/lint", fp);
    char *lint[] = {"lint", NULL};
    struct taskcache_rule r2 = {.dir = root, .temp_dir = tmp, .tasks = lint};
    struct handler_result res2 = {0};
    taskcache_run(&r2, ev, &res2);
    assert_true(res2.ok);
    char rel[200];
    snprintf(rel, sizeof rel, "elsewhere%s/checksum/lint", strrchr(root, '/'));
    assert_false(exists(rel));
    handler_result_free(&res2);
    json_decref(ev);
}

/* ---- exec ------------------------------------------------------------------- */

static char script[300];

static void write_script(const char *body)
{
    snprintf(script, sizeof script, "%s/cmd.sh", root);
    FILE *f = fopen(script, "w");
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(script, 0755);
}

static json_t *exec_event(void)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "ev-1", "type", "t.x", "subject", "$(touch /tmp/pwned)",
                     "source", "/s", "time", "2026-11-20T10:00:00Z");
}

static void test_exec_basics(void **st)
{
    (void)st;
    setenv("SYNCCF_PUSH_SECRET", "whsec_must_not_leak", 1);
    char body[600];
    snprintf(body, sizeof body, "cat > %s/stdin.txt; env > %s/env.txt; echo out; echo err >&2; exit 3", root, root);
    write_script(body);
    char *argv[] = {script, NULL};
    struct exec_rule r = {.argv = argv, .timeout_ms = 5000};
    json_t *ev = exec_event();
    const char *json = "{\"id\":\"ev-1\",\"data\":\"x\"}";
    struct handler_result res = {0};
    exec_run(&r, ev, json, &res);
    assert_false(res.ok);
    assert_false(res.permanent);
    assert_string_equal(res.error, "exit status 3");
    assert_int_equal(json_integer_value(json_object_get(res.detail, "exit")), 3);
    assert_string_equal(json_string_value(json_object_get(res.detail, "output")), "out\nerr\n");
    handler_result_free(&res);
    char p[400];
    size_t len;
    snprintf(p, sizeof p, "%s/stdin.txt", root);
    char *in = read_file(p, &len);
    assert_string_equal(in, json);
    free(in);
    snprintf(p, sizeof p, "%s/env.txt", root);
    char *env = read_file(p, &len);
    assert_non_null(strstr(env, "SYNCCF_EVENT_ID=ev-1\n"));
    assert_non_null(strstr(env, "SYNCCF_EVENT_SUBJECT=$(touch /tmp/pwned)\n"));
    assert_non_null(strstr(env, "SYNCCF_EVENT_TIME=2026-11-20T10:00:00Z\n"));
    assert_null(strstr(env, "whsec_must_not_leak"));
    free(env);
    json_decref(ev);
}

static void test_exec_limits(void **st)
{
    (void)st;
    json_t *ev = exec_event();
    char *argv[] = {script, NULL};

    /* Hangs, ignores SIGTERM, leaves a grandchild: all killed at the timeout. */
    char body[400];
    snprintf(body, sizeof body, "trap '' TERM; sleep 1000 & echo $! > %s/grandchild; wait", root);
    write_script(body);
    struct exec_rule r = {.argv = argv, .timeout_ms = 300};
    struct handler_result res = {0};
    exec_run(&r, ev, "{}", &res);
    assert_false(res.ok);
    assert_true(json_is_true(json_object_get(res.detail, "timed_out")));
    assert_true(json_integer_value(json_object_get(res.detail, "ms")) < 3000);
    handler_result_free(&res);
    char p[400];
    size_t len;
    snprintf(p, sizeof p, "%s/grandchild", root);
    char *pid = read_file(p, &len);
    usleep(100000);
    /* Gone, or a zombie waiting for a reaper that is not us. */
    char statp[64];
    snprintf(statp, sizeof statp, "/proc/%d/stat", atoi(pid));
    FILE *sf = fopen(statp, "r"); /* /proc files have no size: read a line */
    if (sf) {
        char line[256] = "";
        assert_non_null(fgets(line, sizeof line, sf));
        fclose(sf);
        assert_non_null(strstr(line, ") Z "));
    }
    free(pid);

    /* 1 MB of output: only the last 4 KiB are kept. A 1 MB event the command
     * never reads does not deadlock. */
    write_script("head -c 1048576 /dev/zero | tr '\\0' a; printf END");
    char *big = malloc(1 << 20);
    memset(big, 'x', (1 << 20) - 1);
    big[(1 << 20) - 1] = '\0';
    struct exec_rule r2 = {.argv = argv, .timeout_ms = 10000};
    struct handler_result res2 = {0};
    exec_run(&r2, ev, big, &res2);
    free(big);
    assert_true(res2.ok);
    const char *out = json_string_value(json_object_get(res2.detail, "output"));
    assert_int_equal(strlen(out), HANDLER_OUTPUT_TAIL);
    assert_memory_equal(out + HANDLER_OUTPUT_TAIL - 3, "END", 3);
    handler_result_free(&res2);

    /* A missing program is a permanent failure with a clear message. */
    char *missing[] = {"/nonexistent/program", NULL};
    struct exec_rule r3 = {.argv = missing, .timeout_ms = 1000};
    struct handler_result res3 = {0};
    exec_run(&r3, ev, "{}", &res3);
    assert_false(res3.ok);
    assert_true(res3.permanent);
    assert_non_null(strstr(res3.error, "cannot run /nonexistent/program"));
    handler_result_free(&res3);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_name),
        cmocka_unit_test_setup_teardown(test_remote_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_basics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
