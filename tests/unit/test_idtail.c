/* test_idtail.c -- the in-memory tail of dedupe keys: lookups through
 * colliding slots, growth, undo of a failed transaction, freezing and the
 * merge's bookkeeping. */
#include "../../lib/idtail.h"
#include "testutil.h"

/* Keys whose low bits are equal land in the same slot: every lookup probes. */
static int64_t colliding(int i) { return (int64_t)((uint64_t)(i + 1) << 40); }

static void test_add_find_grow(void **st)
{
    (void)st;
    struct idtail t;
    idtail_init(&t);
    const int n = 5000; /* past the first capacity (1,024) twice */
    for (int i = 0; i < n; i++) assert_int_equal(idtail_add(&t, colliding(i), i + 1, 100), 0);
    for (int i = 0; i < n; i++) assert_int_equal(idtail_find(&t, colliding(i)), i + 1);
    assert_int_equal(idtail_find(&t, colliding(n)), 0);
    assert_int_equal(idtail_find(&t, -1), 0);
    assert_int_equal(t.since, 100);
    idtail_free(&t);
}

static void test_undo(void **st)
{
    (void)st;
    struct idtail t;
    idtail_init(&t);
    for (int i = 0; i < 10; i++) assert_int_equal(idtail_add(&t, colliding(i), i + 1, 0), 0);
    idtail_begin(&t);
    for (int i = 10; i < 2000; i++) assert_int_equal(idtail_add(&t, colliding(i), i + 1, 0), 0);
    idtail_undo(&t);
    assert_int_equal(t.nlive, 10);
    for (int i = 0; i < 10; i++) assert_int_equal(idtail_find(&t, colliding(i)), i + 1);
    for (int i = 10; i < 2000; i++) assert_int_equal(idtail_find(&t, colliding(i)), 0);
    /* The same keys again, with other seqs, as a retry after a failure. */
    idtail_begin(&t);
    for (int i = 10; i < 20; i++) assert_int_equal(idtail_add(&t, colliding(i), 100 + i, 0), 0);
    assert_int_equal(idtail_find(&t, colliding(15)), 115);
    idtail_free(&t);
}

static void test_freeze_and_merge(void **st)
{
    (void)st;
    struct idtail t;
    idtail_init(&t);
    const int64_t keys[] = {42, -7, INT64_MAX, INT64_MIN, 0, 1000};
    const int nk = (int)(sizeof keys / sizeof *keys);
    for (int i = 0; i < nk; i++) assert_int_equal(idtail_add(&t, keys[i], 10 + i, 0), 0);
    assert_int_equal(idtail_freeze(&t), 0);
    assert_int_equal(t.nlive, 0);
    assert_int_equal(t.nfrozen, nk);
    assert_int_equal(t.frozen_max, 10 + nk - 1);
    for (int i = 1; i < nk; i++) assert_true(t.frozen[i - 1].h < t.frozen[i].h);
    for (int i = 0; i < nk; i++) assert_int_equal(idtail_find(&t, keys[i]), 10 + i);
    /* New keys go live beside the frozen ones; a second freeze waits. */
    assert_int_equal(idtail_add(&t, 5, 99, 0), 0);
    assert_int_equal(idtail_freeze(&t), 0);
    assert_int_equal(t.nfrozen, nk);
    assert_int_equal(idtail_find(&t, 5), 99);
    idtail_merged(&t, 4);
    assert_int_equal(t.merged, 4);
    assert_int_equal(idtail_find(&t, INT64_MAX), 10 + 2); /* merged keys are still found until freed */
    idtail_merged(&t, (size_t)nk - 4);
    assert_int_equal(t.nfrozen, 0);
    assert_null(t.frozen);
    assert_int_equal(idtail_find(&t, 42), 0);
    assert_int_equal(idtail_find(&t, 5), 99);
    idtail_clear(&t);
    assert_int_equal(idtail_find(&t, 5), 0);
    idtail_free(&t);
}

/* Many keys of every bit pattern: the frozen set is in signed order and
 * holds each key with its seq. */
static void test_freeze_sorts_many(void **st)
{
    (void)st;
    struct idtail t;
    idtail_init(&t);
    uint64_t x = 88172645463325252ull;
    const int n = 50000;
    for (int i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        assert_int_equal(idtail_add(&t, (int64_t)x, i + 1, 0), 0);
    }
    int64_t *keys = malloc(n * sizeof *keys);
    assert_non_null(keys);
    for (int i = 0; i < n; i++) keys[i] = t.live[i].h;
    assert_int_equal(idtail_freeze(&t), 0);
    assert_int_equal(t.nfrozen, n);
    for (int i = 1; i < n; i++) assert_true(t.frozen[i - 1].h < t.frozen[i].h);
    for (int i = 0; i < n; i++) assert_int_equal(idtail_find(&t, keys[i]), i + 1);
    free(keys);
    idtail_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_grow),
        cmocka_unit_test(test_undo),
        cmocka_unit_test(test_freeze_and_merge),
        cmocka_unit_test(test_freeze_sorts_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
