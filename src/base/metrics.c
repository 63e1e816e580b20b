#include "base/fmacros.h"

#include "base/metrics.h"

#include "base/alloc.h"
#include "base/log.h"
#include "base/utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_BUCKETS   512 /* > 2 * CG_METRICS_MAX_FAMILIES: short chains */
#define MAX_PAIRS        32  /* label pairs in one set */
#define MAX_UNKNOWN_WARN 32
#define OVERFLOW_LABELS  "overflow=\"true\""

enum { WARN_TYPE = 1, WARN_LABELS = 2, WARN_OVERFLOW = 4, WARN_VALUE = 8 };
enum op { OP_INC, OP_SET, OP_OBSERVE };

struct series {
    struct series *next; /* hash chain */
    uint64_t hash;
    char *labels; /* canonical, "" for none */
    size_t labels_len;
    double value;     /* counter, gauge */
    uint64_t *counts; /* histogram: per bucket (not cumulative), last is +Inf */
    double sum;
    uint64_t count;
};

struct family {
    struct family *next; /* hash chain */
    uint64_t hash;
    char *name;
    char *help; /* escaped for the HELP line */
    enum cg_metric_type type;
    double *bounds;
    size_t nbounds;
    struct series **table;
    size_t table_size; /* power of two */
    size_t nseries;
    struct series *overflow;
    int warned;
};

struct cg_metrics {
    struct family *index[FAMILY_BUCKETS];
    struct family *sorted[CG_METRICS_MAX_FAMILIES]; /* by name, for rendering */
    size_t nfamilies;
    char *unknown[MAX_UNKNOWN_WARN]; /* undeclared names already logged */
    size_t nunknown;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct cg_metrics *cg_metrics_new(void)
{
    return cg_calloc(1, sizeof(struct cg_metrics));
}

static void family_free(struct family *f)
{
    for (size_t i = 0; i < f->table_size; i++) {
        struct series *s = f->table[i];
        while (s) {
            struct series *next = s->next;
            free(s->labels);
            free(s->counts);
            free(s);
            s = next;
        }
    }
    free(f->table);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void cg_metrics_free(struct cg_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfamilies; i++)
        family_free(m->sorted[i]);
    for (size_t i = 0; i < m->nunknown; i++)
        free(m->unknown[i]);
    free(m);
}

static int name_ok(const char *s)
{
    size_t n = strnlen(s, CG_METRICS_MAX_NAME + 1);
    if (n == 0 || n > CG_METRICS_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && (i == 0 || c < '0' || c > '9'))
            return 0;
    }
    return 1;
}

static struct family *find_family(const struct cg_metrics *m, const char *name)
{
    size_t n = strnlen(name, CG_METRICS_MAX_NAME + 1);
    uint64_t h = fnv1a(name, n);
    for (struct family *f = m->index[h % FAMILY_BUCKETS]; f; f = f->next)
        if (f->hash == h && strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* Appends s escaped for a HELP line (backslash and newline) or a label value
 * (also double quote); invalid UTF-8 becomes U+FFFD. */
static int append_escaped(struct cg_buf *b, const char *s, int quote)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c >= 0x80) {
            size_t len = cg_utf8_seq_len(s + i, n - i);
            rc = len ? cg_buf_append(b, s + i, len) : cg_buf_appends(b, "\xef\xbf\xbd");
            i += len ? len : 1;
        } else {
            if (c == '\\')
                rc = cg_buf_appends(b, "\\\\");
            else if (c == '\n')
                rc = cg_buf_appends(b, "\\n");
            else if (c == '"' && quote)
                rc = cg_buf_appends(b, "\\\"");
            else
                rc = cg_buf_appendc(b, (char)c);
            i++;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

int cg_metrics_declare(struct cg_metrics *m, const char *name, enum cg_metric_type type,
                       const char *help, const double *buckets, size_t nbuckets)
{
    if (m == NULL || name == NULL || !name_ok(name) || find_family(m, name) != NULL ||
        m->nfamilies >= CG_METRICS_MAX_FAMILIES)
        return -1;
    if (type != CG_COUNTER && type != CG_GAUGE && type != CG_HISTOGRAM)
        return -1;
    if (nbuckets > 0 && (type != CG_HISTOGRAM || buckets == NULL))
        return -1;
    if (nbuckets > CG_METRICS_MAX_BUCKETS)
        return -1;
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return -1;
    if (help == NULL)
        help = "";
    if (strnlen(help, CG_METRICS_MAX_HELP + 1) > CG_METRICS_MAX_HELP)
        return -1;

    struct cg_buf hb;
    cg_buf_init(&hb, CG_BUF_UNBOUNDED);
    append_escaped(&hb, help, 0);

    struct family *f = cg_calloc(1, sizeof *f);
    f->name = cg_strdup(name);
    f->hash = fnv1a(name, strlen(name));
    f->help = cg_buf_take(&hb);
    f->type = type;
    if (nbuckets > 0) {
        f->bounds = cg_malloc(nbuckets * sizeof(double));
        memcpy(f->bounds, buckets, nbuckets * sizeof(double));
    }
    f->nbounds = nbuckets;
    f->table_size = 16;
    f->table = cg_calloc(f->table_size, sizeof(struct series *));

    f->next = m->index[f->hash % FAMILY_BUCKETS];
    m->index[f->hash % FAMILY_BUCKETS] = f;
    /* Insertion keeps sorted[] in name order, so rendering needs no sort. */
    size_t at = m->nfamilies;
    while (at > 0 && strcmp(m->sorted[at - 1]->name, name) > 0) {
        m->sorted[at] = m->sorted[at - 1];
        at--;
    }
    m->sorted[at] = f;
    m->nfamilies++;
    return 0;
}

static void warn_family(struct family *f, int what, const char *msg)
{
    if (f->warned & what)
        return;
    f->warned |= what;
    cg_log_warn(msg, "family=%s", f->name);
}

static void warn_unknown(struct cg_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nunknown; i++)
        if (strcmp(m->unknown[i], name) == 0)
            return;
    if (m->nunknown >= MAX_UNKNOWN_WARN)
        return;
    m->unknown[m->nunknown++] = cg_strndup(name, CG_METRICS_MAX_NAME);
    cg_log_warn("metrics: update of an undeclared family ignored", "family=%.*s",
                CG_METRICS_MAX_NAME, name);
}

struct pair {
    const char *key; /* start of the pair; the key runs to '=' */
    size_t key_len;
    size_t len; /* whole pair: key="value" */
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Parses a label set and writes it to out (>= n + 1 bytes) with the pairs
 * sorted by name. Returns the canonical length, or -1 when the set is not
 * `name="value"(,name="value")*` with valid escapes and UTF-8, repeats a
 * name, uses a reserved `__` name, or `le` on a histogram. */
static long canonical_labels(const char *s, size_t n, int histogram, char *out)
{
    struct pair pairs[MAX_PAIRS];
    size_t np = 0, i = 0;
    while (i < n) {
        if (np == MAX_PAIRS)
            return -1;
        size_t start = i;
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
            return -1;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                         (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            i++;
        size_t key_len = i - start;
        if (key_len >= 2 && s[start] == '_' && s[start + 1] == '_')
            return -1;
        if (histogram && key_len == 2 && memcmp(s + start, "le", 2) == 0)
            return -1;
        if (i + 1 >= n || s[i] != '=' || s[i + 1] != '"')
            return -1;
        i += 2;
        size_t vstart = i;
        while (i < n && s[i] != '"') {
            if (s[i] == '\n')
                return -1;
            if (s[i] == '\\') {
                if (i + 1 >= n || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n'))
                    return -1;
                i++;
            }
            i++;
        }
        if (i >= n || !cg_utf8_valid(s + vstart, i - vstart))
            return -1;
        i++; /* closing quote */
        pairs[np].key = s + start;
        pairs[np].key_len = key_len;
        pairs[np].len = i - start;
        np++;
        if (i < n) {
            if (s[i] != ',' || i + 1 == n)
                return -1;
            i++;
        }
    }
    qsort(pairs, np, sizeof pairs[0], pair_cmp);
    size_t o = 0;
    for (size_t k = 0; k < np; k++) {
        if (k > 0 && pair_cmp(&pairs[k - 1], &pairs[k]) == 0)
            return -1;
        if (k > 0)
            out[o++] = ',';
        memcpy(out + o, pairs[k].key, pairs[k].len);
        o += pairs[k].len;
    }
    out[o] = '\0';
    return (long)o;
}

static struct series *find_series(const struct family *f, const char *labels, size_t n, uint64_t h)
{
    for (struct series *s = f->table[h & (f->table_size - 1)]; s; s = s->next)
        if (s->hash == h && s->labels_len == n && memcmp(s->labels, labels, n) == 0)
            return s;
    return NULL;
}

static void grow(struct family *f)
{
    size_t size = f->table_size * 2;
    struct series **table = cg_calloc(size, sizeof(struct series *));
    for (size_t i = 0; i < f->table_size; i++) {
        struct series *s = f->table[i];
        while (s) {
            struct series *next = s->next;
            s->next = table[s->hash & (size - 1)];
            table[s->hash & (size - 1)] = s;
            s = next;
        }
    }
    free(f->table);
    f->table = table;
    f->table_size = size;
}

static struct series *add_series(struct family *f, const char *labels, size_t n, uint64_t h)
{
    if (f->nseries >= f->table_size)
        grow(f);
    struct series *s = cg_calloc(1, sizeof *s);
    s->hash = h;
    s->labels = cg_strndup(labels, n);
    s->labels_len = n;
    if (f->type == CG_HISTOGRAM)
        s->counts = cg_calloc(f->nbounds + 1, sizeof(uint64_t));
    s->next = f->table[h & (f->table_size - 1)];
    f->table[h & (f->table_size - 1)] = s;
    f->nseries++;
    return s;
}

/* The series for labels, created on first use; NULL when the set is invalid. */
static struct series *lookup(struct family *f, const char *labels)
{
    if (labels == NULL)
        labels = "";
    size_t n = strnlen(labels, CG_METRICS_MAX_LABELS + 1);
    if (n > CG_METRICS_MAX_LABELS) {
        warn_family(f, WARN_LABELS, "metrics: invalid label set dropped");
        return NULL;
    }
    uint64_t h = fnv1a(labels, n);
    struct series *s = find_series(f, labels, n, h);
    if (s)
        return s;

    char canon[CG_METRICS_MAX_LABELS + 1];
    long cn = canonical_labels(labels, n, f->type == CG_HISTOGRAM, canon);
    if (cn < 0) {
        warn_family(f, WARN_LABELS, "metrics: invalid label set dropped");
        return NULL;
    }
    if ((size_t)cn != n || memcmp(canon, labels, n) != 0) {
        h = fnv1a(canon, (size_t)cn);
        s = find_series(f, canon, (size_t)cn, h);
        if (s)
            return s;
    }
    if (f->nseries < CG_METRICS_MAX_SERIES)
        return add_series(f, canon, (size_t)cn, h);

    if (f->overflow == NULL) {
        size_t on = strlen(OVERFLOW_LABELS);
        uint64_t oh = fnv1a(OVERFLOW_LABELS, on);
        f->overflow = find_series(f, OVERFLOW_LABELS, on, oh);
        if (f->overflow == NULL)
            f->overflow = add_series(f, OVERFLOW_LABELS, on, oh);
    }
    warn_family(f, WARN_OVERFLOW, "metrics: series cap reached, counting under overflow=\"true\"");
    return f->overflow;
}

static void update(struct cg_metrics *m, const char *name, const char *labels, double v, enum op op)
{
    if (m == NULL || name == NULL)
        return;
    struct family *f = find_family(m, name);
    if (f == NULL) {
        warn_unknown(m, name);
        return;
    }
    int type_ok = (op == OP_INC && f->type != CG_HISTOGRAM) ||
                  (op == OP_SET && f->type != CG_HISTOGRAM) ||
                  (op == OP_OBSERVE && f->type == CG_HISTOGRAM);
    if (!type_ok) {
        warn_family(f, WARN_TYPE, "metrics: operation does not fit the family's type");
        return;
    }
    if ((op == OP_INC && f->type == CG_COUNTER && !(v >= 0 && isfinite(v))) ||
        (op == OP_OBSERVE && isnan(v))) {
        warn_family(f, WARN_VALUE, "metrics: value refused");
        return;
    }
    struct series *s = lookup(f, labels);
    if (s == NULL)
        return;
    switch (op) {
    case OP_INC:
        s->value += v;
        break;
    case OP_SET:
        s->value = v;
        break;
    case OP_OBSERVE: {
        size_t i = 0;
        while (i < f->nbounds && v > f->bounds[i])
            i++;
        s->counts[i]++;
        s->sum += v;
        s->count++;
        break;
    }
    }
}

void cg_metrics_inc(struct cg_metrics *m, const char *name, const char *labels, double v)
{
    update(m, name, labels, v, OP_INC);
}

void cg_metrics_set(struct cg_metrics *m, const char *name, const char *labels, double v)
{
    update(m, name, labels, v, OP_SET);
}

void cg_metrics_observe(struct cg_metrics *m, const char *name, const char *labels, double v)
{
    update(m, name, labels, v, OP_OBSERVE);
}

void cg_metrics_label(struct cg_buf *b, const char *key, const char *value)
{
    if (b == NULL || key == NULL)
        return;
    size_t mark = b->len;
    if (cg_buf_appends(b, key) != 0 || cg_buf_appends(b, "=\"") != 0 ||
        append_escaped(b, value ? value : "", 1) != 0 || cg_buf_appendc(b, '"') != 0) {
        b->len = mark;
        if (b->data)
            b->data[mark] = '\0';
    }
}

/* Prometheus' spelling of v: integers without decimals, otherwise the
 * shortest %.Ng (N = 15..17) that reads back as exactly v. */
static void format_number(double v, char *out, size_t n)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(out, n, "0"); /* not "-0" */
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, n, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, n, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static int series_cmp(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    return strcmp(x->labels, y->labels);
}

/* name[suffix]{labels[,extra]} value\n */
static int sample(struct cg_buf *out, const char *name, const char *suffix, const char *labels,
                  const char *extra, double v)
{
    char num[64];
    format_number(v, num, sizeof num);
    int has = labels[0] != '\0';
    return cg_buf_printf(out, "%s%s%s%s%s%s%s %s\n", name, suffix, has || extra ? "{" : "", labels,
                         has && extra ? "," : "", extra ? extra : "", has || extra ? "}" : "", num);
}

static int render_series(const struct family *f, const struct series *s, struct cg_buf *out)
{
    if (f->type != CG_HISTOGRAM)
        return sample(out, f->name, "", s->labels, NULL, s->value);
    char le[96], num[64];
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += s->counts[i];
        if (i < f->nbounds)
            format_number(f->bounds[i], num, sizeof num);
        else
            snprintf(num, sizeof num, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", num);
        if (sample(out, f->name, "_bucket", s->labels, le, (double)cum) != 0)
            return -1;
    }
    if (sample(out, f->name, "_sum", s->labels, NULL, s->sum) != 0 ||
        sample(out, f->name, "_count", s->labels, NULL, (double)s->count) != 0)
        return -1;
    return 0;
}

void cg_metrics_render(const struct cg_metrics *m, struct cg_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (m == NULL || out == NULL)
        return;
    struct series **list = NULL;
    size_t cap = 0;
    for (size_t fi = 0; fi < m->nfamilies; fi++) {
        const struct family *f = m->sorted[fi];
        size_t mark = out->len;
        if (cg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                          types[f->type]) != 0)
            goto cut;
        if (f->nseries > cap) {
            cap = f->nseries;
            list = cg_realloc(list, cap * sizeof *list);
        }
        size_t k = 0;
        for (size_t i = 0; i < f->table_size; i++)
            for (struct series *s = f->table[i]; s; s = s->next)
                list[k++] = s;
        if (k > 1) /* list is NULL while no family has a series */
            qsort(list, k, sizeof *list, series_cmp);
        for (size_t i = 0; i < k; i++) {
            mark = out->len;
            if (render_series(f, list[i], out) != 0)
                goto cut;
        }
        continue;
    cut:
        /* Out of room: end at the last complete series, never mid-line. */
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
        break;
    }
    free(list);
}
