#include "base/fmacros.h"

#include "base/crypto.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static const EVP_MD *md_of(enum cg_digest d)
{
    switch (d) {
    case CG_SHA1:
        return EVP_sha1();
    case CG_SHA256:
        return EVP_sha256();
    case CG_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

size_t cg_digest_size(enum cg_digest d)
{
    const EVP_MD *md = md_of(d);
    return md == NULL ? 0 : (size_t)EVP_MD_size(md);
}

size_t cg_hmac(enum cg_digest d, const void *key, size_t keylen, const void *data, size_t len,
               unsigned char out[CG_DIGEST_MAX])
{
    const EVP_MD *md = md_of(d);
    unsigned int out_len = 0;
    if (md == NULL || keylen > INT_MAX)
        return 0;
    if (HMAC(md, key, (int)keylen, data, len, out, &out_len) == NULL)
        return 0;
    return out_len;
}

int cg_pbkdf2_sha256(const void *pass, size_t passlen, const void *salt, size_t saltlen,
                     unsigned iterations, unsigned char *out, size_t n)
{
    if (passlen > INT_MAX || saltlen > INT_MAX || n > INT_MAX || iterations == 0 ||
        iterations > INT_MAX)
        return -1;
    return PKCS5_PBKDF2_HMAC(pass != NULL ? pass : "", (int)passlen,
                             salt != NULL ? salt : (const void *)"", (int)saltlen, (int)iterations,
                             EVP_sha256(), (int)n, out) == 1
               ? 0
               : -1;
}

void cg_sha1_hex(const void *data, size_t len, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(data != NULL ? data : (const void *)"", len, md);
    cg_hex_encode(md, sizeof md, out);
}

void cg_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data != NULL ? data : (const void *)"", len, md);
    cg_hex_encode(md, sizeof md, out);
}

int cg_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void cg_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int cg_hex_decode(const char *s, size_t n, unsigned char *out, size_t want)
{
    if (n != want * 2)
        return -1;
    for (size_t i = 0; i < want; i++) {
        int hi = cg_hexval((unsigned char)s[2 * i]), lo = cg_hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

size_t cg_base64_encode(const unsigned char *in, size_t n, char *out)
{
    if (n > INT_MAX / 4 * 3)
        return 0;
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return w < 0 ? 0 : (size_t)w;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int cg_base64_decode(const char *s, size_t n, unsigned char *out, size_t want)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
        return -1;
    size_t got = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (got != want)
        return -1;
    unsigned long acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned long)v) & 0xffffffUL;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits > 0 && (acc & ((1UL << bits) - 1)) != 0)
        return -1;
    return o == want ? 0 : -1;
}

int cg_ct_streq(const char *given, const char *secret)
{
    if (given == NULL || secret == NULL)
        return 0;
    size_t glen = strlen(given), slen = strlen(secret);
    /* Walk the secret's length whatever the guess's; bytes past the end of
     * a shorter guess compare against its NUL, and the lengths enter the
     * result without a branch. */
    unsigned char diff = (unsigned char)((glen ^ slen) != 0);
    for (size_t i = 0; i < slen; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

int cg_ct_memeq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
