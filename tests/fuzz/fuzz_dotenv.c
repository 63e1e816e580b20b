/*
 * Fuzz target: configuration loading (src/base/config.c): the .env parser, then
 * the validation of every option read from it, including REDIS_URL and the
 * base URLs (src/base/url.c), then check-config's printing.
 *
 * The .env parser is static, so the input is written to a private temporary
 * file and loaded through cg_config_load, with every option cleared from the
 * environment first (the environment would win over the file).
 *
 * Invariants: the load fails exactly when it reports problems, each a
 * non-empty message; the printed configuration has one line per option and
 * never shows a secret (those lines read "********" or "(unset)"); and
 * REDIS_URL's printed form, when the URL parses, is the same URL with only
 * the password masked.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/config.h"
#include "base/url.h"

#include <unistd.h>

/* Options whose values check-config must never print. */
static const char *const secret_names[] = {
    "ADMIN_TOKEN",         "TWILIO_AUTH_TOKEN", "VAPI_API_KEY",
    "VAPI_WEBHOOK_SECRET", "VAPI_HMAC_SECRET",  "WAIT_TIME_READ_TOKEN",
};

static const char *tmp_dir;

/* Clears the environment once, and picks where the file goes: it is written
 * for every input, and tmpfs keeps that off the disk, where the fuzzer would
 * crawl. */
static void setup(void)
{
    for (size_t i = 0; cg_config_option_name(i) != NULL; i++)
        unsetenv(cg_config_option_name(i));
    tmp_dir = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        tmp_dir = "/dev/shm";
    else if (tmp_dir == NULL || tmp_dir[0] == '\0' || strlen(tmp_dir) >= 40)
        tmp_dir = "/tmp";
}

/* The value printed on the "NAME=value  (source)" line, malloc'd, or NULL. */
static char *printed_value(const char *text, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nlen && memcmp(line, name, nlen) == 0 && line[nlen] == '=') {
            const char *v = line + nlen + 1;
            const char *src = NULL;
            /* The source suffix is the last "  (" on the line. */
            for (const char *p = v; p + 3 <= line + len; p++)
                if (memcmp(p, "  (", 3) == 0)
                    src = p;
            FZ_CHECK(src != NULL);
            size_t vlen = (size_t)(src - v);
            char *out = malloc(vlen + 1);
            FZ_CHECK(out != NULL);
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        line += len + (end ? 1 : 0);
    }
    return NULL;
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static void check_redis_masked(const struct cg_config *cfg, const char *text)
{
    struct cg_redis_url u, m;
    if (cfg->redis_url == NULL || cg_redis_url_parse(cfg->redis_url, &u, NULL, 0) != 0)
        return;
    char *shown = printed_value(text, "REDIS_URL");
    FZ_CHECK(shown != NULL);
    FZ_CHECK(cg_redis_url_parse(shown, &m, NULL, 0) == 0);
    FZ_CHECK(strcmp(u.host, m.host) == 0 && u.port == m.port && u.db == m.db);
    FZ_CHECK((u.user == NULL) == (m.user == NULL));
    /* Control characters are printed escaped, so only a user name without
     * them reads back the same. */
    if (u.user && !has_ctl(u.user))
        FZ_CHECK(strcmp(u.user, m.user) == 0);
    if (u.password)
        FZ_CHECK(m.password != NULL && strcmp(m.password, "********") == 0);
    else if (!has_ctl(cfg->redis_url))
        FZ_CHECK(strcmp(shown, cfg->redis_url) == 0);
    free(shown);
    cg_redis_url_free(&m);
    cg_redis_url_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tmp_dir == NULL)
        setup();
    /* A file per input, removed at once: libFuzzer may leave by _exit(),
     * which would skip an atexit() clean-up of a long-lived one. */
    char env_path[64];
    snprintf(env_path, sizeof env_path, "%s/cg-fuzz-env-XXXXXX", tmp_dir);
    int fd = mkstemp(env_path);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    FZ_CHECK(close(fd) == 0);

    struct cg_config cfg;
    struct cg_config_errors errs;
    int rc = cg_config_load(&cfg, env_path, &errs);
    unlink(env_path);
    FZ_CHECK((rc == 0) == (errs.n == 0));
    for (size_t i = 0; i < errs.n; i++)
        FZ_CHECK(errs.msgs[i] != NULL && errs.msgs[i][0] != '\0');

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    FZ_CHECK(out != NULL);
    cg_config_print(&cfg, out);
    FZ_CHECK(fclose(out) == 0);
    /* One line per option, whatever the values hold (a newline in a value
     * once printed a line that read like another option). */
    size_t lines = 0, options = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    while (cg_config_option_name(options) != NULL)
        options++;
    FZ_CHECK(lines == options);
    for (size_t i = 0; i < sizeof secret_names / sizeof *secret_names; i++) {
        char *shown = printed_value(text, secret_names[i]);
        if (shown != NULL)
            FZ_CHECK(strcmp(shown, "********") == 0 || strcmp(shown, "(unset)") == 0);
        free(shown);
    }
    check_redis_masked(&cfg, text);

    free(text);
    cg_config_free(&cfg);
    cg_config_errors_free(&errs);
    return 0;
}
