/* test_gotask.c -- go-task's conventions as the task-cache handler applies
 * them: fingerprint names in both go-task spellings (go-task's own
 * TestNormalizeFilename cases), remote cache keys (TestHTTPNode_CacheKey),
 * where the cache is (rule, TASK_* environment, taskrc files), exact keys
 * from a Taskfile's includes, labels, wildcard tasks and the timestamp
 * method. Vectors: tests/vectors/go-task/names-and-keys.json. */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/gotask.h"
#include "../../lib/handler.h"
#include "testutil.h"

static char root[300];  /* the Taskfile's directory: <base>/proj */
static char base[200];  /* a private tree standing in for HOME and friends */
static char home[300];

static void sh(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "set -e; cd %s; %s", base, cmd);
    assert_int_equal(system(full), 0);
}

static void put(const char *rel, const char *content)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", p);
    *strrchr(dir, '/') = '\0';
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int exists(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* A rule isolated from the machine's own go-task settings: its own HOME,
 * no XDG config, no TASK_* variables from the test's environment. */
static char *isolated_env[8];
static void rule_init(struct taskcache_rule *r)
{
    static char h[320];
    snprintf(h, sizeof h, "HOME=%s", home);
    isolated_env[0] = h;
    isolated_env[1] = "XDG_CONFIG_HOME=";
    isolated_env[2] = "TASK_TEMP_DIR=";
    isolated_env[3] = "TASK_REMOTE_CACHE_DIR=";
    isolated_env[4] = "TASK_REMOTE_DIR=";
    isolated_env[5] = NULL;
    memset(r, 0, sizeof *r);
    r->dir = root;
    r->remote = 1;
    r->env = isolated_env;
}

static int setup(void **st)
{
    (void)st;
    snprintf(base, sizeof base, "/tmp/synccf-gotask-%d", (int)getpid());
    snprintf(root, sizeof root, "%s/proj", base);
    snprintf(home, sizeof home, "%s/home", base);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s %s", base, root, home);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static json_t *vectors(void)
{
    json_error_t err;
    json_t *v = json_load_file("tests/vectors/go-task/names-and-keys.json", 0, &err);
    if (!v) fail_msg("tests/vectors/go-task/names-and-keys.json: %s (run from the project root)", err.text);
    return v;
}

static void test_normalize_vectors(void **st)
{
    (void)st;
    json_t *v = vectors();
    json_t *cases = json_object_get(v, "normalize");
    assert_true(json_array_size(cases) >= 8);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *in = json_string_value(json_object_get(c, "in"));
        char out[128];
        gotask_normalize(in, GOTASK_NAMES_CURRENT, 0, out);
        assert_string_equal(out, json_string_value(json_object_get(c, "current")));
        gotask_normalize(in, GOTASK_NAMES_LEGACY, 0, out);
        assert_string_equal(out, json_string_value(json_object_get(c, "legacy")));
    }
    json_decref(v);
    /* Runes: one multi-byte character is one '-', in both spellings. */
    char out[32];
    gotask_normalize("caf\xc3\xa9:x", GOTASK_NAMES_LEGACY, 0, out);
    assert_string_equal(out, "caf--x");
    gotask_normalize("deploy:*", GOTASK_NAMES_CURRENT, 1, out);
    assert_string_equal(out, "deploy-*");
    assert_true(gotask_star_match("deploy-*", "deploy-prod"));
    assert_false(gotask_star_match("deploy-*", "build"));
    assert_true(gotask_star_match("a*b*c", "axxbyyc"));
    assert_false(gotask_star_match("a*b*c", "axxbyy"));
}

static void test_cache_key_vectors(void **st)
{
    (void)st;
    json_t *v = vectors();
    json_t *cases = json_object_get(v, "cache_keys");
    assert_int_equal(json_array_size(cases), 6);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        char key[GOTASK_KEY_MAX];
        assert_int_equal(gotask_http_key(json_string_value(json_array_get(c, 0)), key, sizeof key), 0);
        assert_string_equal(key, json_string_value(json_array_get(c, 1)));
    }
    json_decref(v);

    /* Beyond go-task's table: the port stays in the host, the query is in
     * the hash but not in the name, a one-character last dir is left out,
     * a password is hashed as url.Redacted() writes it. The hashes are
     * sha256 of the (redacted) URL: printf %s URL | sha256sum. */
    static const char *const extra[][2] = {
        {"https://example.com:8443/ci/Taskfile.yml",
         "http.example.com:8443.ci.Taskfile.yml.7de56bd9dc354969971bc50c6e1ab051f565ca0cbf5f53f2f43cd4b457be9d06"},
        {"https://example.com/Taskfile.yml?ref=v2&x=1",
         "http.example.com.Taskfile.yml.9840c0802171226c638948a8baba8dd27392f1d127a3ee69761386a709c85496"},
        {"https://example.com/a/Taskfile.yml",
         "http.example.com.Taskfile.yml.2d0683cda371c69d66caad12261ac00f742e329c26471c1e14c07bb925a3c9d8"},
        {"https://user:secret@example.com/team/Taskfile.yml",
         "http.example.com.team.Taskfile.yml.9b07be0604eb77039da73c3ad57bdb7692302a36a65a097ae1851a5b429a7706"},
        {"http://127.0.0.1:8080/shared/Taskfile.yml",
         "http.127.0.0.1:8080.shared.Taskfile.yml.b8efdf03a69b58c1b96cc4095e375c97e048d56655c42e1c570eb19a2087b69e"},
    };
    for (size_t k = 0; k < sizeof extra / sizeof *extra; k++) {
        char key[GOTASK_KEY_MAX];
        assert_int_equal(gotask_http_key(extra[k][0], key, sizeof key), 0);
        assert_string_equal(key, extra[k][1]);
    }
    /* Not HTTP nodes, or not nameable before go-task runs. */
    static const char *const none[] = {"https://github.com/go-task/task.git//Taskfile.yml?ref=main",
                                       "https://dev.azure.com/o/p/_git/r//Taskfile.yml", "https://{{.HOST}}/Taskfile.yml",
                                       "./sub/Taskfile.yml", "git@github.com:o/r.git", "https:///x", "https://h/%zz"};
    for (size_t k = 0; k < sizeof none / sizeof *none; k++) {
        char key[GOTASK_KEY_MAX];
        assert_int_equal(gotask_http_key(none[k], key, sizeof key), -1);
    }
}

static void test_taskrc_order(void **st)
{
    (void)st;
    put("xdg/task/taskrc.yml", "temp-dir: from-xdg\nremote:\n  cache-dir: xdg-cache\n");
    put("home/.taskrc.yml", "temp-dir: from-home\nremote:\n  cache-dir: /home-cache\n");
    put(".taskrc.yml", "remote:\n  cache-dir: parent-cache\n"); /* the project's parent */
    put("proj/.taskrc.yml", "temp-dir: from-proj\n");
    put("proj/.taskrc.yaml", "temp-dir: never\n"); /* .yml is found first */
    char xdg[300];
    snprintf(xdg, sizeof xdg, "%s/xdg", base);
    struct gotask_rc rc = {0};
    gotask_taskrc(root, home, xdg, &rc);
    assert_string_equal(rc.temp_dir, "from-proj");
    assert_string_equal(rc.remote_cache_dir, "parent-cache");
    gotask_rc_free(&rc);

    /* Without the directory chain's files, home overrides XDG. */
    sh("rm proj/.taskrc.yml proj/.taskrc.yaml .taskrc.yml");
    gotask_taskrc(root, home, xdg, &rc);
    assert_string_equal(rc.temp_dir, "from-home");
    assert_string_equal(rc.remote_cache_dir, "/home-cache");
    gotask_rc_free(&rc);
    gotask_taskrc(root, NULL, xdg, &rc);
    assert_string_equal(rc.temp_dir, "from-xdg");
    gotask_rc_free(&rc);

    /* A broken file is skipped, as if absent. */
    put("proj/.taskrc.yml", "temp-dir: [unclosed\n");
    assert_int_equal(gotask_taskrc_file("/nonexistent/.taskrc.yml", &rc), 0);
    char p[400];
    snprintf(p, sizeof p, "%s/.taskrc.yml", root);
    assert_int_equal(gotask_taskrc_file(p, &rc), -1);
    assert_null(rc.temp_dir);
    gotask_taskrc(root, home, xdg, &rc);
    assert_string_equal(rc.temp_dir, "from-home");
    gotask_rc_free(&rc);

    /* The walk up stops where the owner changes (go-task's SearchNPathRecursively). */
    sh("rm proj/.taskrc.yml");
    put(".taskrc.yml", "temp-dir: from-parent\n");
    gotask_taskrc(root, NULL, NULL, &rc);
    assert_string_equal(rc.temp_dir, "from-parent");
    gotask_rc_free(&rc);
    if (getuid() == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "chown 65534 %s", root);
        assert_int_equal(system(cmd), 0);
        gotask_taskrc(root, NULL, NULL, &rc);
        assert_null(rc.temp_dir);
    }
}

/* A FIFO where a taskrc or an included Taskfile is expected is refused at
 * once: opening it for reading must not wait for a writer. */
static void test_fifo_refused(void **st)
{
    (void)st;
    sh("mkdir -p fifo && rm -f fifo/.taskrc.yml fifo/Taskfile.yml && mkfifo fifo/.taskrc.yml fifo/Taskfile.yml");
    char p[400];
    alarm(10); /* a hang fails the test instead of the run */
    struct gotask_rc rc = {0};
    snprintf(p, sizeof p, "%s/fifo/.taskrc.yml", base);
    assert_int_equal(gotask_taskrc_file(p, &rc), -1);
    assert_null(rc.temp_dir);
    struct gotask_file f;
    snprintf(p, sizeof p, "%s/fifo/Taskfile.yml", base);
    assert_int_equal(gotask_file_read(p, &f), -1);
    alarm(0);
    sh("rm -r fifo");
}

static void dirs(const struct taskcache_rule *r, const char *want_fp, const char *want_remote)
{
    char fp[4096], remote[4096], why[256], wf[600], wr[600];
    assert_int_equal(taskcache_dirs(r, fp, sizeof fp, remote, sizeof remote, why, sizeof why), 0);
    snprintf(wf, sizeof wf, want_fp, base);
    snprintf(wr, sizeof wr, want_remote, base);
    assert_string_equal(fp, wf);
    assert_string_equal(remote, wr);
}

static void test_dirs_precedence(void **st)
{
    (void)st;
    struct taskcache_rule r;
    rule_init(&r);
    dirs(&r, "%s/proj/.task", "%s/proj/.task/remote");

    /* taskrc temp-dir, relative to the Taskfile's directory */
    put("proj/.taskrc.yml", "temp-dir: tmpx\nremote:\n  cache-dir: rc-cache\n");
    dirs(&r, "%s/proj/tmpx", "%s/proj/rc-cache/remote");

    /* TASK_TEMP_DIR beats taskrc; absolute: fingerprints under the project's name */
    char env_temp[400], env_rcd[400], env_legacy[400];
    snprintf(env_temp, sizeof env_temp, "TASK_TEMP_DIR=%s/shared-tmp", base);
    isolated_env[2] = env_temp;
    dirs(&r, "%s/shared-tmp/proj", "%s/proj/rc-cache/remote");

    /* TASK_REMOTE_DIR (legacy) comes after taskrc; TASK_REMOTE_CACHE_DIR before */
    snprintf(env_legacy, sizeof env_legacy, "TASK_REMOTE_DIR=%s/legacy", base);
    isolated_env[4] = env_legacy;
    dirs(&r, "%s/shared-tmp/proj", "%s/proj/rc-cache/remote");
    put("proj/.taskrc.yml", "temp-dir: tmpx\n");
    dirs(&r, "%s/shared-tmp/proj", "%s/legacy/remote");
    put("proj/.taskrc.yml", "temp-dir: tmpx\nremote:\n  cache-dir: rc-cache\n");
    snprintf(env_rcd, sizeof env_rcd, "TASK_REMOTE_CACHE_DIR=%s/new", base);
    isolated_env[3] = env_rcd;
    dirs(&r, "%s/shared-tmp/proj", "%s/new/remote");

    /* The rule's own settings stand for go-task's flags: above everything. */
    r.temp_dir = "flagtmp";
    r.remote_cache_dir = "~/cache";
    dirs(&r, "%s/proj/flagtmp", "%s/home/cache/remote");

    /* A path that leaves its directory is refused. */
    r.temp_dir = "../elsewhere";
    char fp[4096], remote[4096], why[256];
    assert_int_equal(taskcache_dirs(&r, fp, sizeof fp, remote, sizeof remote, why, sizeof why), -1);
    assert_non_null(strstr(why, ".."));

    /* A variable the rule sets empty is unset, whatever the daemon has;
     * XDG_CONFIG_HOME comes from the rule's env too. */
    struct taskcache_rule e;
    rule_init(&e);
    char daemon_tmp[400];
    snprintf(daemon_tmp, sizeof daemon_tmp, "%s/daemon-tmp", base);
    setenv("TASK_TEMP_DIR", daemon_tmp, 1);
    dirs(&e, "%s/proj/tmpx", "%s/proj/rc-cache/remote");
    sh("rm proj/.taskrc.yml");
    put("xdg2/task/taskrc.yaml", "temp-dir: from-xdg\n");
    char env_xdg[400];
    snprintf(env_xdg, sizeof env_xdg, "XDG_CONFIG_HOME=%s/xdg2", base);
    isolated_env[1] = env_xdg;
    dirs(&e, "%s/proj/from-xdg", "%s/proj/from-xdg/remote");
    put("proj/.taskrc.yml", "temp-dir: tmpx\nremote:\n  cache-dir: rc-cache\n");

    /* Without rule env, the daemon's environment is read. */
    struct taskcache_rule d = {.dir = root};
    char want[400];
    snprintf(want, sizeof want, "%s/daemon-tmp", base);
    setenv("TASK_TEMP_DIR", want, 1);
    setenv("HOME", home, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("TASK_REMOTE_CACHE_DIR");
    unsetenv("TASK_REMOTE_DIR");
    sh("rm proj/.taskrc.yml");
    dirs(&d, "%s/daemon-tmp/proj", "%s/daemon-tmp/remote");
    unsetenv("TASK_TEMP_DIR");
}

static size_t nremoved(struct handler_result *r) { return json_array_size(json_object_get(r->detail, "removed")); }
static const char *mode(struct handler_result *r) { return json_string_value(json_object_get(r->detail, "remote")); }

/* Cache files for key, with go-task's three extensions. */
static void cache(const char *key)
{
    static const char *const exts[] = {"yaml", "timestamp", "checksum"};
    for (size_t e = 0; e < 3; e++) {
        char rel[512];
        snprintf(rel, sizeof rel, "proj/.task/remote/%s.%s", key, exts[e]);
        put(rel, exts[e]);
    }
}

static void test_exact_includes(void **st)
{
    (void)st;
    char k_site[GOTASK_KEY_MAX], k_other[GOTASK_KEY_MAX], k_deep[GOTASK_KEY_MAX], k_nested[GOTASK_KEY_MAX],
        k_preview[GOTASK_KEY_MAX];
    assert_int_equal(gotask_http_key("https://marketing-site.pages.dev/taskfiles/Taskfile.yml", k_site, sizeof k_site), 0);
    assert_int_equal(gotask_http_key("https://other.example.org/shared/Taskfile.yml", k_other, sizeof k_other), 0);
    assert_int_equal(gotask_http_key("https://marketing-site.pages.dev/deep/Taskfile.yml", k_deep, sizeof k_deep), 0);
    assert_int_equal(gotask_http_key("https://docs.example.com/n/Taskfile.yml", k_nested, sizeof k_nested), 0);
    assert_int_equal(gotask_http_key("https://3b6c1f0e.marketing-site.pages.dev/ci/Taskfile.yml", k_preview, sizeof k_preview), 0);
    /* With a port, and a root-level file with a query string: spelled out
     * as go-task writes them (sha256 of the URL). */
    const char *k_port = "http.docs.example.com:8443.ci.Taskfile.yml.6c2ef6a0dea3e4507a44f8d4c721dfa0fa1333edb78f27140f823516d22ff0d4";
    const char *k_root = "http.docs.example.com.Taskfile.yml.c41a36cd546a8fa79dad8f235ef29caa0f617f05432810b6ef233c96d4c53b68";
    /* Same host and path as the site's key, another hash: host-prefix
     * matching would take it, exact keys must not. */
    const char *decoy = "http.marketing-site.pages.dev.taskfiles.Taskfile.yml.0000000000000000000000000000000000000000000000000000000000000000";
    const char *keys[] = {k_site, k_port, k_root, k_other, k_deep, k_nested, k_preview, decoy};
    for (size_t i = 0; i < 8; i++) cache(keys[i]);

    put("proj/Taskfile.yml", "version: '3'\n"
                             "includes:\n"
                             "  site: https://marketing-site.pages.dev/taskfiles/Taskfile.yml\n"
                             "  ported:\n"
                             "    taskfile: https://docs.example.com:8443/ci/Taskfile.yml\n"
                             "    optional: true\n"
                             "  rootfile: 'https://docs.example.com/Taskfile.yml?ref=v2&x=1'\n"
                             "  other: https://other.example.org/shared/Taskfile.yml\n"
                             "  preview: https://3b6c1f0e.marketing-site.pages.dev/ci/Taskfile.yml\n"
                             "  gitinc: https://github.com/o/r.git//Taskfile.yml?ref=main\n"
                             "  local: ./sub\n"
                             "tasks:\n  build: {cmds: [echo]}\n");
    /* A local include, and the cached copy of a remote one, include more. */
    put("proj/sub/Taskfile.yml", "version: '3'\nincludes:\n  deep: https://marketing-site.pages.dev/deep/Taskfile.yml\n");
    char rel[512];
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.yaml", k_other);
    put(rel, "version: '3'\nincludes:\n  nested: https://docs.example.com/n/Taskfile.yml\n");

    struct taskcache_rule r;
    rule_init(&r);
    char *hosts[] = {"docs.example.com", NULL};
    r.hosts = hosts;
    json_t *ev = json_pack("{s:s,s:s}", "type", "com.cloudflare.pages.deployment.success", "subject", "marketing-site");
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_string_equal(mode(&res), "exact");
    const char *gone[] = {k_site, k_port, k_root, k_deep, k_nested, k_preview};
    for (size_t i = 0; i < 6; i++) {
        char p[512];
        snprintf(p, sizeof p, "proj/.task/remote/%s.yaml", gone[i]);
        if (exists(p)) fail_msg("not removed: %s", p);
        snprintf(p, sizeof p, "proj/.task/remote/%s.timestamp", gone[i]);
        assert_false(exists(p));
        snprintf(p, sizeof p, "proj/.task/remote/%s.checksum", gone[i]); /* trust kept */
        assert_true(exists(p));
    }
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.yaml", k_other);
    assert_true(exists(rel));
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.yaml", decoy);
    assert_true(exists(rel));
    assert_int_equal(nremoved(&res), 12);
    handler_result_free(&res);

    /* includes: names an include for any event; remote_checksum takes the trust record too. */
    char *incs[] = {"other", NULL};
    struct taskcache_rule r2;
    rule_init(&r2);
    r2.includes = incs;
    r2.remote_checksum = 1;
    json_t *hook = json_pack("{s:s}", "type", "dev.synccf.hook.deploy");
    taskcache_run(&r2, hook, &res);
    assert_true(res.ok);
    assert_string_equal(mode(&res), "exact");
    assert_int_equal(nremoved(&res), 3);
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.checksum", k_other);
    assert_false(exists(rel));
    handler_result_free(&res);

    /* An include named by a template cannot be keyed: host prefixes are
     * matched instead, and the run says so. */
    put("proj/Taskfile.yml", "version: '3'\nincludes:\n  t: https://{{.SITE}}/Taskfile.yml\n");
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_string_equal(mode(&res), "prefix");
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.yaml", decoy);
    assert_false(exists(rel));
    handler_result_free(&res);

    /* taskfile: names another Taskfile, relative to dir. */
    put("proj/ci/Tasks.yml", "version: '3'\nincludes:\n  o: https://other.example.org/shared/Taskfile.yml\n");
    cache(k_other);
    char *hosts2[] = {"other.example.org", NULL};
    struct taskcache_rule r3;
    rule_init(&r3);
    r3.hosts = hosts2;
    r3.taskfile = "ci/Tasks.yml";
    taskcache_run(&r3, hook, &res);
    assert_string_equal(mode(&res), "exact");
    assert_int_equal(nremoved(&res), 2);
    handler_result_free(&res);

    /* remote_all, and a rule with nothing to select remotely. */
    struct taskcache_rule r4;
    rule_init(&r4);
    taskcache_run(&r4, hook, &res);
    assert_string_equal(mode(&res), "none");
    assert_int_equal(nremoved(&res), 0);
    handler_result_free(&res);
    r4.remote_all = 1;
    taskcache_run(&r4, hook, &res);
    assert_string_equal(mode(&res), "all");
    snprintf(rel, sizeof rel, "proj/.task/remote/%s.checksum", k_site);
    assert_false(exists(rel));
    handler_result_free(&res);

    /* No Taskfile: prefix matching. */
    sh("rm proj/Taskfile.yml");
    cache(decoy);
    taskcache_run(&r, ev, &res);
    assert_string_equal(mode(&res), "prefix");
    assert_false(exists(rel));
    handler_result_free(&res);
    json_decref(ev);
    json_decref(hook);
}

/* The moved caches are where the handler removes things. */
static void test_moved_caches(void **st)
{
    (void)st;
    char k_site[GOTASK_KEY_MAX];
    assert_int_equal(gotask_http_key("https://marketing-site.pages.dev/taskfiles/Taskfile.yml", k_site, sizeof k_site), 0);
    put("proj/Taskfile.yml", "version: '3'\nincludes:\n  site: https://marketing-site.pages.dev/taskfiles/Taskfile.yml\n"
                             "tasks:\n  build: {}\n");
    char rel[512];
    snprintf(rel, sizeof rel, "home/rcache/remote/%s.yaml", k_site);
    put(rel, "x");
    put("shared-tmp/proj/checksum/build", "x");
    put("shared-tmp/other-project/checksum/build", "x"); /* another project's, same name */
    put("proj/.task/checksum/build", "x");               /* not where go-task looks now */
    put("home/.taskrc.yml", "remote:\n  cache-dir: ~/rcache\n");

    struct taskcache_rule r;
    rule_init(&r);
    char env_temp[400];
    snprintf(env_temp, sizeof env_temp, "TASK_TEMP_DIR=%s/shared-tmp", base);
    isolated_env[2] = env_temp;
    char *tasks[] = {"build", NULL};
    r.tasks = tasks;
    json_t *ev = json_pack("{s:s,s:s}", "type", "com.cloudflare.pages.deployment.success", "subject", "marketing-site");
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_false(exists(rel));
    assert_false(exists("shared-tmp/proj/checksum/build"));
    assert_true(exists("shared-tmp/other-project/checksum/build"));
    assert_true(exists("proj/.task/checksum/build"));
    char want[400];
    snprintf(want, sizeof want, "%s/shared-tmp/proj", base);
    assert_string_equal(json_string_value(json_object_get(res.detail, "fingerprint_dir")), want);
    handler_result_free(&res);
    json_decref(ev);
}

static void test_labels_wildcards_versions(void **st)
{
    (void)st;
    put("proj/Taskfile.yml", "version: '3'\n"
                             "tasks:\n"
                             "  build_app:\n    label: 'app[release]'\n    cmds: [echo]\n"
                             "  'deploy:*':\n    label: 'deploy {{index .MATCH 0}}'\n"
                             "  'gen:*':\n    cmds: [echo]\n"
                             "  lint: {}\n");
    /* Fingerprints as go-task >= 3.52 and <= 3.51 would have written them. */
    static const char *const files[] = {
        "checksum/app-release-", "checksum/app[release]", /* build_app's label, both spellings */
        "checksum/build-app",    "checksum/build_app",    /* its name (written before the label was set) */
        "checksum/deploy-prod",  "checksum/deploy-staging", "checksum/gen-api",  "checksum/gen-docs", "checksum/lint",
        "timestamp/build-app",   "timestamp/build_app",   "timestamp/gen--",   "timestamp/gen-api", "timestamp/lint",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "proj/.task/%s", files[i]);
        put(rel, "fp\n");
    }
    struct taskcache_rule r;
    rule_init(&r);
    char *tasks[] = {"build_app", "deploy:prod", "gen:api", NULL};
    r.tasks = tasks;
    json_t *ev = json_pack("{s:s}", "type", "x");
    struct handler_result res = {0};
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_false(exists("proj/.task/checksum/app-release-"));
    assert_false(exists("proj/.task/checksum/app[release]"));
    assert_false(exists("proj/.task/checksum/build-app"));
    assert_false(exists("proj/.task/checksum/build_app"));
    assert_false(exists("proj/.task/checksum/deploy-prod")); /* label "deploy {{...}}" */
    assert_false(exists("proj/.task/checksum/deploy-staging")); /* its template matches any instance */
    assert_false(exists("proj/.task/checksum/gen-api"));     /* a wildcard task's matched name */
    assert_true(exists("proj/.task/checksum/gen-docs"));
    assert_true(exists("proj/.task/checksum/lint"));
    assert_true(exists("proj/.task/timestamp/build_app"));   /* method checksum: timestamp/ untouched */
    assert_int_equal(nremoved(&res), 7);
    handler_result_free(&res);

    /* Method timestamp: the task name (never the label), the declared
     * wildcard name, both spellings. */
    r.method = TASKCACHE_TIMESTAMP;
    taskcache_run(&r, ev, &res);
    assert_true(res.ok);
    assert_false(exists("proj/.task/timestamp/build-app"));
    assert_false(exists("proj/.task/timestamp/build_app"));
    assert_false(exists("proj/.task/timestamp/gen--"));
    assert_false(exists("proj/.task/timestamp/gen-api"));
    assert_true(exists("proj/.task/timestamp/lint"));
    assert_true(exists("proj/.task/checksum/gen-docs"));
    handler_result_free(&res);

    /* A rule may name a pattern: every instance of a wildcard task. */
    char *pat[] = {"gen:*", NULL};
    r.method = TASKCACHE_CHECKSUM;
    r.tasks = pat;
    taskcache_run(&r, ev, &res);
    assert_false(exists("proj/.task/checksum/gen-docs"));
    assert_true(exists("proj/.task/checksum/lint"));
    handler_result_free(&res);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_vectors),
        cmocka_unit_test(test_cache_key_vectors),
        cmocka_unit_test_setup_teardown(test_taskrc_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirs_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_includes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_caches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_wildcards_versions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
