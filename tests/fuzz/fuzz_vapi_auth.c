/*
 * Fuzz target: Vapi webhook authentication (src/vapi/api.c
 * cg_vapi_authenticate): the legacy x-vapi-secret header and the HMAC plan
 * with its algorithm, encoding, prefix and header names.
 *
 * Input, like a small HTTP request:
 *   line 1   "mode alg enc prefix sig-header ts-header" (mode legacy, hmac
 *            or both; missing words or "-" leave the option unset)
 *   lines    "name: value" headers, up to an empty line
 *   rest     the body
 *
 * Invariants: with only the legacy secret, the answer is exactly "the
 * x-vapi-secret header equals the secret"; for a supported algorithm and
 * encoding, a signature computed here over "{timestamp}.{body}" is accepted,
 * and refused when one body byte changes or the timestamp is too old.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "vapi/api.h"

#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SECRET      "vapi-legacy-secret"
#define HMAC_SECRET "vapi-hmac-key"
#define NOW_MS      1750183823822ULL
#define MAX_HEADERS 16

struct headers {
    const char *name[MAX_HEADERS];
    const char *value[MAX_HEADERS];
    size_t n;
};

static const char *header_get(const char *name, void *arg)
{
    const struct headers *h = arg;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

/* The next space-separated word at *cursor (the line is cut in place), or
 * NULL when absent or "-". */
static const char *word(char **cursor)
{
    char *s = *cursor;
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return NULL;
    char *end = strchr(s, ' ');
    if (end) {
        *end = '\0';
        *cursor = end + 1;
    } else {
        *cursor = s + strlen(s);
    }
    return strcmp(s, "-") == 0 ? NULL : s;
}

static const EVP_MD *digest_of(const char *alg)
{
    if (alg == NULL || strcasecmp(alg, "sha256") == 0)
        return EVP_sha256();
    if (strcasecmp(alg, "sha512") == 0)
        return EVP_sha512();
    if (strcasecmp(alg, "sha1") == 0)
        return EVP_sha1();
    return NULL;
}

/* The signature header value for ts and body: hex (lower or upper case) or
 * Base64 (standard padded, or URL-safe unpadded), after the prefix. */
static char *make_signature(const EVP_MD *md, int base64, int variant, const char *prefix,
                            const char *ts, const char *body, size_t len)
{
    size_t tlen = strlen(ts);
    unsigned char *msg = malloc(tlen + 1 + len + 1);
    FZ_CHECK(msg != NULL);
    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    if (len)
        memcpy(msg + tlen + 1, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    FZ_CHECK(HMAC(md, HMAC_SECRET, (int)strlen(HMAC_SECRET), msg, tlen + 1 + len, mac, &mac_len) !=
             NULL);
    free(msg);

    size_t plen = prefix ? strlen(prefix) : 0;
    char *out = malloc(plen + 2 * EVP_MAX_MD_SIZE + 4);
    FZ_CHECK(out != NULL);
    if (plen)
        memcpy(out, prefix, plen);
    char *p = out + plen;
    if (!base64) {
        const char *hex = variant ? "0123456789ABCDEF" : "0123456789abcdef";
        for (unsigned int i = 0; i < mac_len; i++) {
            *p++ = hex[mac[i] >> 4];
            *p++ = hex[mac[i] & 15];
        }
        *p = '\0';
        return out;
    }
    EVP_EncodeBlock((unsigned char *)p, mac, (int)mac_len);
    if (variant) {
        for (char *c = p; *c; c++)
            *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
        char *pad = strchr(p, '=');
        if (pad)
            *pad = '\0';
    }
    return out;
}

static void check_hmac(const struct cg_vapi_auth *a, const char *body, size_t len)
{
    const EVP_MD *md = digest_of(a->hmac_algorithm);
    const char *enc = a->hmac_encoding;
    int base64 = enc != NULL && strcasecmp(enc, "base64") == 0;
    if (md == NULL || (enc != NULL && !base64 && strcasecmp(enc, "hex") != 0))
        return;
    const char *sig_name = a->hmac_signature_header ? a->hmac_signature_header : "x-signature";
    const char *ts_name = a->hmac_timestamp_header ? a->hmac_timestamp_header : "x-timestamp";
    /* One header for both would make the test's own request ambiguous. */
    if (strcasecmp(sig_name, ts_name) == 0 || strcasecmp(sig_name, "x-vapi-secret") == 0 ||
        strcasecmp(ts_name, "x-vapi-secret") == 0)
        return;

    char ts[32];
    /* Seconds and milliseconds are both accepted; the body picks one. */
    if (len % 3 == 0)
        snprintf(ts, sizeof ts, "%llu", NOW_MS / 1000 - 10);
    else
        snprintf(ts, sizeof ts, "%llu", NOW_MS - 10000);
    char *sig = make_signature(md, base64, (int)(len & 1), a->hmac_prefix, ts, body, len);
    struct headers h = {{ts_name, sig_name}, {ts, sig}, 2};
    FZ_CHECK(cg_vapi_authenticate(a, header_get, &h, body, len, NOW_MS) == 1);

    if (len > 0) {
        char *changed = malloc(len);
        FZ_CHECK(changed != NULL);
        memcpy(changed, body, len);
        changed[len / 2] ^= 0x20;
        FZ_CHECK(cg_vapi_authenticate(a, header_get, &h, changed, len, NOW_MS) == 0);
        free(changed);
    }
    /* Ten minutes late is past the default five-minute skew. */
    FZ_CHECK(cg_vapi_authenticate(a, header_get, &h, body, len, NOW_MS + 600000) == 0);
    free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_reader rd;
    fz_reader_init(&rd, data, size);
    char *config = fz_field(&rd);
    char *cursor = config;
    const char *mode = word(&cursor);
    struct cg_vapi_auth a = {0};
    int legacy = mode == NULL || strcmp(mode, "hmac") != 0;
    int hmac = mode != NULL && (strcmp(mode, "hmac") == 0 || strcmp(mode, "both") == 0);
    a.secret = legacy ? SECRET : NULL;
    a.hmac_secret = hmac ? HMAC_SECRET : NULL;
    a.hmac_algorithm = word(&cursor);
    a.hmac_encoding = word(&cursor);
    a.hmac_prefix = word(&cursor);
    a.hmac_signature_header = word(&cursor);
    a.hmac_timestamp_header = word(&cursor);

    struct headers h = {{NULL}, {NULL}, 0};
    char *lines[MAX_HEADERS];
    size_t nlines = 0;
    while (rd.n > 0 && nlines < MAX_HEADERS) {
        char *line = fz_field(&rd);
        lines[nlines++] = line;
        if (line[0] == '\0')
            break;
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        h.name[h.n] = line;
        h.value[h.n++] = v;
    }
    const char *body = rd.p;
    size_t len = rd.n;

    int ok = cg_vapi_authenticate(&a, header_get, &h, body, len, NOW_MS);
    if (!hmac) {
        const char *got = header_get("x-vapi-secret", &h);
        FZ_CHECK(ok == (got != NULL && strcmp(got, SECRET) == 0));
    }
    if (hmac)
        check_hmac(&a, body, len);

    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(config);
    return 0;
}
