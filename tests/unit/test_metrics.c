/*
 * test_metrics.c - the Prometheus registry: exact exposition text for
 * counters, gauges and histograms, number spelling, label escaping and
 * canonical order, the per-family series cap, misuse being ignored, and
 * deterministic output.
 */
#include "base/fmacros.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders m and compares with want. */
static void assert_render(const struct cg_metrics *m, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_metrics_render(m, &b);
    assert_string_equal(cg_buf_str(&b), want);
    cg_buf_free(&b);
}

static char *render(const struct cg_metrics *m)
{
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    cg_metrics_render(m, &b);
    return cg_buf_take(&b);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int quiet_setup(void **state)
{
    (void)state;
    /* Misuse is logged once; keep the test output readable. */
    cg_log_set_level(CG_LOG_ERROR);
    return 0;
}

static void test_counter(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(
        cg_metrics_declare(m, "callgate_calls_total", CG_COUNTER, "Calls handled.", NULL, 0), 0);
    assert_render(m, "# HELP callgate_calls_total Calls handled.\n"
                     "# TYPE callgate_calls_total counter\n");
    cg_metrics_inc(m, "callgate_calls_total", "outcome=\"connected\",signal=\"vapi\"", 1);
    cg_metrics_inc(m, "callgate_calls_total", "outcome=\"connected\",signal=\"vapi\"", 1);
    cg_metrics_inc(m, "callgate_calls_total", "outcome=\"abandoned\",signal=\"twilio\"", 1);
    cg_metrics_inc(m, "callgate_calls_total", NULL, 0);
    assert_render(m, "# HELP callgate_calls_total Calls handled.\n"
                     "# TYPE callgate_calls_total counter\n"
                     "callgate_calls_total 0\n"
                     "callgate_calls_total{outcome=\"abandoned\",signal=\"twilio\"} 1\n"
                     "callgate_calls_total{outcome=\"connected\",signal=\"vapi\"} 2\n");
    /* Counters only go up; set mirrors a total kept elsewhere. */
    cg_metrics_inc(m, "callgate_calls_total", "", -1);
    cg_metrics_inc(m, "callgate_calls_total", "", NAN);
    cg_metrics_inc(m, "callgate_calls_total", "", INFINITY);
    cg_metrics_set(m, "callgate_calls_total", "", 42);
    cg_metrics_inc(m, "callgate_calls_total", "", 0.5);
    assert_render(m, "# HELP callgate_calls_total Calls handled.\n"
                     "# TYPE callgate_calls_total counter\n"
                     "callgate_calls_total 42.5\n"
                     "callgate_calls_total{outcome=\"abandoned\",signal=\"twilio\"} 1\n"
                     "callgate_calls_total{outcome=\"connected\",signal=\"vapi\"} 2\n");
    cg_metrics_free(m);
}

static void test_gauge_numbers(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "g", CG_GAUGE, "A gauge.", NULL, 0), 0);
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {3, "3"},
        {-7, "-7"},
        {0, "0"},
        {-0.0, "0"},
        {2.5, "2.5"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e20, "1e+20"},
        {9007199254740991.0, "9007199254740991"},
        {123456789.125, "123456789.125"},
        {1e-7, "1e-07"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    char want[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_metrics_set(m, "g", NULL, cases[i].v);
        snprintf(want, sizeof want, "# HELP g A gauge.\n# TYPE g gauge\ng %s\n", cases[i].want);
        /* Every spelling must read back as the same double. */
        if (isfinite(cases[i].v))
            assert_true(strtod(cases[i].want, NULL) == cases[i].v);
        assert_render(m, want);
    }
    /* Gauges go both ways. */
    cg_metrics_set(m, "g", NULL, 10);
    cg_metrics_inc(m, "g", NULL, -4);
    assert_render(m, "# HELP g A gauge.\n# TYPE g gauge\ng 6\n");
    cg_metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    static const double buckets[] = {0.5, 1, 5};
    assert_int_equal(cg_metrics_declare(m, "callgate_http_seconds", CG_HISTOGRAM,
                                        "Request latency.", buckets, 3),
                     0);
    const char *in = "route=\"incoming\"";
    cg_metrics_observe(m, "callgate_http_seconds", in, 0.25);
    cg_metrics_observe(m, "callgate_http_seconds", in, 0.5); /* le is inclusive */
    cg_metrics_observe(m, "callgate_http_seconds", in, 0.75);
    cg_metrics_observe(m, "callgate_http_seconds", in, 3);
    cg_metrics_observe(m, "callgate_http_seconds", in, 10);
    cg_metrics_observe(m, "callgate_http_seconds", NULL, 0.5);
    cg_metrics_observe(m, "callgate_http_seconds", NULL, NAN); /* ignored */
    assert_render(m, "# HELP callgate_http_seconds Request latency.\n"
                     "# TYPE callgate_http_seconds histogram\n"
                     "callgate_http_seconds_bucket{le=\"0.5\"} 1\n"
                     "callgate_http_seconds_bucket{le=\"1\"} 1\n"
                     "callgate_http_seconds_bucket{le=\"5\"} 1\n"
                     "callgate_http_seconds_bucket{le=\"+Inf\"} 1\n"
                     "callgate_http_seconds_sum 0.5\n"
                     "callgate_http_seconds_count 1\n"
                     "callgate_http_seconds_bucket{route=\"incoming\",le=\"0.5\"} 2\n"
                     "callgate_http_seconds_bucket{route=\"incoming\",le=\"1\"} 3\n"
                     "callgate_http_seconds_bucket{route=\"incoming\",le=\"5\"} 4\n"
                     "callgate_http_seconds_bucket{route=\"incoming\",le=\"+Inf\"} 5\n"
                     "callgate_http_seconds_sum{route=\"incoming\"} 14.5\n"
                     "callgate_http_seconds_count{route=\"incoming\"} 5\n");
    /* A histogram with only the implied +Inf bucket. */
    assert_int_equal(cg_metrics_declare(m, "h0", CG_HISTOGRAM, NULL, NULL, 0), 0);
    cg_metrics_observe(m, "h0", NULL, -2);
    char *out = render(m);
    assert_non_null(strstr(out, "# HELP h0 \n# TYPE h0 histogram\n"
                                "h0_bucket{le=\"+Inf\"} 1\nh0_sum -2\nh0_count 1\n"));
    free(out);
    cg_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b, 1024);
    cg_metrics_label(&b, "path", "a\\b\"c\nd");
    assert_string_equal(cg_buf_str(&b), "path=\"a\\\\b\\\"c\\nd\"");
    cg_buf_appendc(&b, ',');
    cg_metrics_label(&b, "code", NULL);
    cg_buf_appendc(&b, ',');
    cg_metrics_label(&b, "raw", "caf\xc3\xa9 \xff");
    assert_string_equal(cg_buf_str(&b),
                        "path=\"a\\\\b\\\"c\\nd\",code=\"\",raw=\"caf\xc3\xa9 \xef\xbf\xbd\"");

    /* The escaped set is accepted as is and rendered verbatim. */
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "c", CG_COUNTER, "Back\\slash\nnewline \"q\".", NULL, 0),
                     0);
    cg_metrics_inc(m, "c", cg_buf_str(&b), 1);
    assert_render(m, "# HELP c Back\\\\slash\\nnewline \"q\".\n"
                     "# TYPE c counter\n"
                     "c{code=\"\",path=\"a\\\\b\\\"c\\nd\",raw=\"caf\xc3\xa9 \xef\xbf\xbd\"} 1\n");
    cg_metrics_free(m);

    /* Too little room: b is left as it was. */
    struct cg_buf small;
    cg_buf_init(&small, 8);
    cg_metrics_label(&small, "k", "v");
    assert_string_equal(cg_buf_str(&small), "k=\"v\"");
    cg_metrics_label(&small, "key", "value");
    assert_string_equal(cg_buf_str(&small), "k=\"v\"");
    cg_buf_free(&small);
    cg_buf_free(&b);
}

static void test_canonical_and_invalid_labels(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "c", CG_COUNTER, "h", NULL, 0), 0);
    static const double bk[] = {1};
    assert_int_equal(cg_metrics_declare(m, "h", CG_HISTOGRAM, "h", bk, 1), 0);
    /* One series whatever the order of the pairs. */
    cg_metrics_inc(m, "c", "b=\"2\",a=\"1\"", 1);
    cg_metrics_inc(m, "c", "a=\"1\",b=\"2\"", 1);
    cg_metrics_inc(m, "c", "b=\"2\",a=\"1\"", 1);
    /* Values may hold anything escaped, including ',' '=' and '}'. */
    cg_metrics_inc(m, "c", "z=\"x,y=\\\"}\"", 1);

    static const char *const bad[] = {
        "a=1",       "a=\"1\"x",         "a=\"1\",",   ",a=\"1\"",        "a=\"1\",,b=\"2\"",
        "__a=\"1\"", "1a=\"x\"",         "a-b=\"x\"",  "a=\"1\",a=\"2\"", "a=\"\\x\"",
        "a=\"\n\"",  "a=\"unterminated", "a=\"\xff\"", "=\"x\"",          "a =\"x\"",
        "a:b=\"x\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cg_metrics_inc(m, "c", bad[i], 100);
    cg_metrics_observe(m, "h", "le=\"5\"", 1);
    cg_metrics_observe(m, "h", "a=\"1\",le=\"5\"", 1);
    /* Over-long label sets are dropped, not cut. */
    char *longl = malloc(CG_METRICS_MAX_LABELS + 16);
    memcpy(longl, "a=\"", 3);
    memset(longl + 3, 'x', CG_METRICS_MAX_LABELS + 10);
    memcpy(longl + 3 + CG_METRICS_MAX_LABELS + 10, "\"", 2);
    cg_metrics_inc(m, "c", longl, 1);
    free(longl);

    assert_render(m, "# HELP c h\n# TYPE c counter\n"
                     "c{a=\"1\",b=\"2\"} 3\n"
                     "c{z=\"x,y=\\\"}\"} 1\n"
                     "# HELP h h\n# TYPE h histogram\n");
    cg_metrics_free(m);
}

static void test_many_series_and_order(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "c", CG_COUNTER, "h", NULL, 0), 0);
    char labels[64];
    /* Insert in a scrambled order; render must come out sorted. */
    for (int i = 0; i < 600; i++) {
        int k = (i * 7919) % 600;
        snprintf(labels, sizeof labels, "id=\"%03d\"", k);
        cg_metrics_inc(m, "c", labels, k);
        cg_metrics_inc(m, "c", labels, 1);
    }
    char *out = render(m);
    assert_int_equal(count_lines(out), 602);
    const char *p = strchr(strchr(out, '\n') + 1, '\n') + 1;
    for (int k = 0; k < 600; k++) {
        char want[64];
        int n = snprintf(want, sizeof want, "c{id=\"%03d\"} %d\n", k, k + 1);
        assert_memory_equal(p, want, (size_t)n);
        p += n;
    }
    assert_int_equal(*p, '\0');
    free(out);
    cg_metrics_free(m);
}

static void test_overflow_cap(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "errors_total", CG_COUNTER, "h", NULL, 0), 0);
    char labels[64];
    for (int i = 0; i < CG_METRICS_MAX_SERIES + 250; i++) {
        snprintf(labels, sizeof labels, "code=\"%d\"", 10000 + i);
        cg_metrics_inc(m, "errors_total", labels, 1);
    }
    /* Existing series keep counting after the cap. */
    cg_metrics_inc(m, "errors_total", "code=\"10000\"", 1);
    char *out = render(m);
    assert_int_equal(count_lines(out), 2 + CG_METRICS_MAX_SERIES + 1);
    assert_non_null(strstr(out, "\nerrors_total{overflow=\"true\"} 250\n"));
    assert_non_null(strstr(out, "\nerrors_total{code=\"10000\"} 2\n"));
    assert_null(strstr(out, "code=\"11000\""));
    free(out);

    /* Histograms overflow the same way. */
    assert_int_equal(cg_metrics_declare(m, "h", CG_HISTOGRAM, "h", NULL, 0), 0);
    for (int i = 0; i < CG_METRICS_MAX_SERIES + 3; i++) {
        snprintf(labels, sizeof labels, "k=\"%d\"", i);
        cg_metrics_observe(m, "h", labels, 1);
    }
    out = render(m);
    assert_non_null(strstr(out, "\nh_count{overflow=\"true\"} 3\n"));
    free(out);
    cg_metrics_free(m);
}

static void test_misuse_ignored(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "c", CG_COUNTER, "h", NULL, 0), 0);
    assert_int_equal(cg_metrics_declare(m, "g", CG_GAUGE, "h", NULL, 0), 0);
    assert_int_equal(cg_metrics_declare(m, "h", CG_HISTOGRAM, "h", NULL, 0), 0);
    char *before = render(m);
    /* Unknown families, many of them and repeatedly. */
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "nope_%d", i % 50);
        cg_metrics_inc(m, name, NULL, 1);
        cg_metrics_set(m, name, NULL, 1);
        cg_metrics_observe(m, name, NULL, 1);
    }
    cg_metrics_inc(m, NULL, NULL, 1);
    cg_metrics_inc(NULL, "c", NULL, 1);
    /* Operations that do not fit the type. */
    cg_metrics_observe(m, "c", NULL, 1);
    cg_metrics_observe(m, "g", NULL, 1);
    cg_metrics_inc(m, "h", NULL, 1);
    cg_metrics_set(m, "h", NULL, 1);
    char *after = render(m);
    assert_string_equal(before, after);
    free(before);
    free(after);
    cg_metrics_render(NULL, NULL);
    cg_metrics_free(m);
    cg_metrics_free(NULL);
}

static void test_declare_errors(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    static const double ok[] = {0.1, 1, 10};
    static const double unsorted[] = {1, 0.5};
    static const double dup[] = {1, 1};
    static const double nan[] = {1, NAN};
    static const double inf[] = {1, INFINITY};
    assert_int_equal(cg_metrics_declare(m, "a:b_c9", CG_GAUGE, NULL, NULL, 0), 0);
    assert_int_equal(cg_metrics_declare(m, "_x", CG_GAUGE, NULL, NULL, 0), 0);
    assert_int_equal(cg_metrics_declare(m, "a:b_c9", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "9lives", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "a-b", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "a b", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "caf\xc3\xa9", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, NULL, CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(NULL, "x", CG_COUNTER, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "x", (enum cg_metric_type)7, NULL, NULL, 0), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_COUNTER, NULL, ok, 3), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, NULL, 3), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, unsorted, 2), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, dup, 2), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, nan, 2), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, inf, 2), -1);
    double many[CG_METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i < CG_METRICS_MAX_BUCKETS + 1; i++)
        many[i] = (double)i;
    assert_int_equal(
        cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, many, CG_METRICS_MAX_BUCKETS + 1), -1);
    assert_int_equal(cg_metrics_declare(m, "x", CG_HISTOGRAM, NULL, many, CG_METRICS_MAX_BUCKETS),
                     0);
    assert_int_equal(cg_metrics_declare(m, "y", CG_HISTOGRAM, NULL, ok, 3), 0);
    /* The registry is bounded too. */
    char name[32];
    int added = 0;
    for (int i = 0; i < CG_METRICS_MAX_FAMILIES + 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        if (cg_metrics_declare(m, name, CG_COUNTER, NULL, NULL, 0) == 0)
            added++;
    }
    assert_int_equal(added, CG_METRICS_MAX_FAMILIES - 4);
    cg_metrics_free(m);
}

/* The same updates in a different order render the same bytes. */
static void fill(struct cg_metrics *m, int reverse)
{
    static const char *const names[] = {"zeta", "alpha", "mid:dle", "Beta"};
    for (int k = 0; k < 4; k++) {
        int i = reverse ? 3 - k : k;
        assert_int_equal(
            cg_metrics_declare(m, names[i], i == 2 ? CG_HISTOGRAM : CG_COUNTER, names[i], NULL, 0),
            0);
    }
    char labels[64];
    for (int k = 0; k < 40; k++) {
        int i = reverse ? 39 - k : k;
        snprintf(labels, sizeof labels, "x=\"%d\",a=\"%d\"", i % 7, i % 3);
        cg_metrics_inc(m, "zeta", labels, 1);
        cg_metrics_inc(m, "alpha", labels + 6, 2); /* a="..." alone */
        cg_metrics_observe(m, "mid:dle", labels, 1);
        cg_metrics_inc(m, "Beta", NULL, 1);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    struct cg_metrics *a = cg_metrics_new(), *b = cg_metrics_new();
    fill(a, 0);
    fill(b, 1);
    char *ra = render(a), *rb = render(b);
    assert_string_equal(ra, rb);
    /* Families by name (byte order). */
    const char *beta = strstr(ra, "# HELP Beta"), *alpha = strstr(ra, "# HELP alpha");
    const char *mid = strstr(ra, "# HELP mid:dle"), *zeta = strstr(ra, "# HELP zeta");
    assert_true(beta && alpha && mid && zeta);
    assert_true(beta < alpha && alpha < mid && mid < zeta);
    /* Canonical label order in the output. */
    assert_non_null(strstr(ra, "zeta{a=\"0\",x=\"0\"} 2\n"));
    free(ra);
    free(rb);
    cg_metrics_free(a);
    cg_metrics_free(b);
}

static void test_render_ceiling(void **state)
{
    (void)state;
    struct cg_metrics *m = cg_metrics_new();
    static const double bk[] = {1, 2, 3};
    assert_int_equal(cg_metrics_declare(m, "h", CG_HISTOGRAM, "h", bk, 3), 0);
    char labels[32];
    for (int i = 0; i < 20; i++) {
        snprintf(labels, sizeof labels, "k=\"%02d\"", i);
        cg_metrics_observe(m, "h", labels, i);
    }
    char *full = render(m);
    size_t full_len = strlen(full);
    for (size_t max = 0; max < full_len + 2; max += 37) {
        struct cg_buf b;
        cg_buf_init(&b, max);
        cg_metrics_render(m, &b);
        const char *s = cg_buf_str(&b);
        /* A prefix of the full text, ending at a line boundary. */
        assert_true(b.len <= max);
        assert_memory_equal(s, full, b.len);
        assert_true(b.len == 0 || s[b.len - 1] == '\n');
        cg_buf_free(&b);
    }
    free(full);
    cg_metrics_free(m);
}

static void test_lookup_speed(void **state)
{
    (void)state;
    /* A million updates over 1000 series: hashing, not a scan. Under
     * sanitizers this still runs in well under a second. */
    struct cg_metrics *m = cg_metrics_new();
    assert_int_equal(cg_metrics_declare(m, "c", CG_COUNTER, "h", NULL, 0), 0);
    char labels[CG_METRICS_MAX_SERIES][32];
    for (int i = 0; i < CG_METRICS_MAX_SERIES; i++)
        snprintf(labels[i], sizeof labels[i], "route=\"r%d\"", i);
    for (int i = 0; i < 1000000; i++)
        cg_metrics_inc(m, "c", labels[(i * 31) % CG_METRICS_MAX_SERIES], 1);
    char *out = render(m);
    assert_non_null(strstr(out, "\nc{route=\"r0\"} 1000\n"));
    assert_null(strstr(out, "overflow"));
    free(out);
    cg_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_gauge_numbers),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_canonical_and_invalid_labels),
        cmocka_unit_test(test_many_series_and_order),
        cmocka_unit_test(test_overflow_cap),
        cmocka_unit_test(test_misuse_ignored),
        cmocka_unit_test(test_declare_errors),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_render_ceiling),
        cmocka_unit_test(test_lookup_speed),
    };
    return cmocka_run_group_tests(tests, quiet_setup, NULL);
}
