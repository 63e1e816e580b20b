/*
 * Fuzz target: the comparison of the gate's instances' settings maps
 * (src/gate/instances.c gate_instances_compare), which reads what other
 * instances (other versions, a Redis anyone with access may have written
 * to) stored in cg:{g}:inst:<id>.
 *
 * Input: lines "fingerprint\tsettings", one instance each (at most 16).
 * Invariants: the names listed are comma-separated, each a name some map
 * holds, none twice; the count of disagreeing instances is below the
 * number of instances, and 0 exactly when no name is listed; the
 * comparison is symmetric in the set of names (the same input reversed
 * lists the same names, maybe in another order).
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "gate/instances.h"

#define MAXI 16

static size_t parse(char *text, struct gate_instance_view *v)
{
    size_t n = 0;
    for (char *line = text; line != NULL && n < MAXI;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        v[n].id = "i";
        v[n].fingerprint = line;
        v[n].settings = "";
        if (tab) {
            *tab = '\0';
            v[n].settings = tab + 1;
        }
        n++;
        line = next;
    }
    return n;
}

static size_t count_names(const char *names)
{
    if (names[0] == '\0')
        return 0;
    size_t n = 1;
    for (const char *p = names; *p; p++)
        n += *p == ',';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct gate_instance_view v[MAXI], r[MAXI];
    size_t n = parse(text, v);
    char names[640], back[640];
    size_t dis = 0, dis_back = 0;
    gate_instances_compare(v, n, names, sizeof names, &dis);
    FZ_CHECK(strlen(names) < sizeof names);
    FZ_CHECK(n == 0 || dis < n);
    FZ_CHECK((dis == 0) || names[0] != '\0');
    /* Every name listed once, each found in some map. */
    for (const char *p = names; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        FZ_CHECK(len > 0);
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            for (const char *s = strstr(v[i].settings, "="); s && !found; s = strstr(s + 1, "="))
                found = (size_t)(s - v[i].settings) >= len && memcmp(s - len, p, len) == 0;
        FZ_CHECK(found);
        p = end ? end + 1 : p + len;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = v[n - 1 - i];
    gate_instances_compare(r, n, back, sizeof back, &dis_back);
    /* Within the space of names, the same set either way. */
    if (strlen(names) + 64 < sizeof names && strlen(back) + 64 < sizeof back)
        FZ_CHECK(count_names(names) == count_names(back));
    free(text);
    return 0;
}
