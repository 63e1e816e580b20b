/*
 * crypto.h - the digests, MACs, encodings and comparisons callgate uses,
 * over OpenSSL's libcrypto. Pure functions: no allocation unless stated,
 * outputs in caller-provided arrays, NUL-terminated where text.
 */
#ifndef CG_CRYPTO_H
#define CG_CRYPTO_H

#include <stddef.h>

enum cg_digest { CG_SHA1, CG_SHA256, CG_SHA512 };

#define CG_DIGEST_MAX 64 /* bytes of the largest digest (SHA-512) */

/* Size in bytes of a digest. */
size_t cg_digest_size(enum cg_digest d);
/* HMAC of data under key into out[CG_DIGEST_MAX]; the digest's size, or 0
 * on failure. */
size_t cg_hmac(enum cg_digest d, const void *key, size_t keylen, const void *data, size_t len,
               unsigned char out[CG_DIGEST_MAX]);
/* PBKDF2-HMAC-SHA256 of pass under salt, iterations rounds, into out[n]:
 * 0, or -1 on failure. For digests of secrets that leave the process (a
 * plain hash of a weak secret is a dictionary away from it). */
int cg_pbkdf2_sha256(const void *pass, size_t passlen, const void *salt, size_t saltlen,
                     unsigned iterations, unsigned char *out, size_t n);
/* Lower-case hex SHA-1 and SHA-256 of data (Redis script ids; Twilio's
 * bodySHA256). */
void cg_sha1_hex(const void *data, size_t len, char out[41]);
void cg_sha256_hex(const void *data, size_t len, char out[65]);

/* Value of one hex digit, either case; -1 for anything else. */
int cg_hexval(unsigned char c);
/* Lower-case hex of n bytes into out[2n+1]. */
void cg_hex_encode(const unsigned char *in, size_t n, char *out);
/* Decodes exactly `want` bytes from n hex digits (n must be 2*want); -1 on
 * anything else. */
int cg_hex_decode(const char *s, size_t n, unsigned char *out, size_t want);
/* Standard Base64 with padding of n bytes into out (4*ceil(n/3)+1 bytes);
 * the length written, without the NUL. */
size_t cg_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes Base64 (standard or URL-safe alphabet, padding optional, canonical
 * trailing bits) that must yield exactly `want` bytes; -1 on anything else. */
int cg_base64_decode(const char *s, size_t n, unsigned char *out, size_t want);

/*
 * Whether the string `given` (from outside) equals `secret`, in a time that
 * depends only on the length of secret: no early exit on the first
 * difference nor on a length mismatch, so timing tells an attacker neither
 * how much of a guess was right nor how long the secret is. NULL never
 * matches.
 */
int cg_ct_streq(const char *given, const char *secret);
/* The same for two byte strings of equal, public length. */
int cg_ct_memeq(const void *a, const void *b, size_t n);

#endif
