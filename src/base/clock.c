#include "base/fmacros.h"

#include "base/clock.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t cg_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cg_thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t cg_mono_ms(void)
{
    return cg_mono_us() / 1000u;
}

uint64_t cg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cg_iso8601_ms(uint64_t wall_ms, char out[25])
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Fields are printed one by one so the compiler can see the bound. */
    snprintf(out, 25, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(wall_ms % 1000u));
}

double cg_iso8601_parse(const char *s)
{
    int f[6];
    static const char seps[] = "--T::";
    const int width[6] = {4, 2, 2, 2, 2, 2};
    const char *p = s;
    if (p == NULL)
        return -1;
    for (int i = 0; i < 6; i++) {
        int v = 0;
        for (int k = 0; k < width[i]; k++, p++) {
            if (*p < '0' || *p > '9')
                return -1;
            v = v * 10 + (*p - '0');
        }
        f[i] = v;
        if (i < 5 && *p++ != seps[i])
            return -1;
    }
    double frac = 0;
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    if (!(strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0) || f[1] < 1 || f[1] > 12 || f[2] < 1 ||
        f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
        return -1;
    struct tm tm = {.tm_year = f[0] - 1900,
                    .tm_mon = f[1] - 1,
                    .tm_mday = f[2],
                    .tm_hour = f[3],
                    .tm_min = f[4],
                    .tm_sec = f[5]};
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (double)t + frac;
}

void cg_rfc2822(uint64_t wall_ms, char out[32])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Built by hand: strftime's %a and %b follow the locale. */
    snprintf(out, 32, "%s, %02u %s %04u %02u:%02u:%02u +0000", days[tm.tm_wday % 7],
             (unsigned)tm.tm_mday % 100u, months[tm.tm_mon % 12],
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

/* xoshiro256** seeded from getrandom(); jitter and ids need speed, not
 * cryptographic strength. */
static uint64_t rng_state[4];
static int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cg_random_u64(void)
{
    if (!rng_seeded) {
        if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
            rng_state[0] = cg_mono_us() ^ ((uint64_t)getpid() << 32);
            rng_state[1] = cg_wall_ms() * 0x9e3779b97f4a7c15ull;
            rng_state[2] = 0x2545f4914f6cdd1dull;
            rng_state[3] = 0x94d049bb133111ebull;
        }
        rng_seeded = 1;
    }
    return cg_xoshiro256ss(rng_state);
}

uint64_t cg_xoshiro256ss(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t cg_random_below(uint64_t n)
{
    return n ? cg_random_u64() % n : 0;
}
