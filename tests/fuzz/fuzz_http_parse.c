/*
 * Fuzz target: the HTTP/1.1 request parser (net/http_parse.h): the head
 * scanner, the head parser and the chunked decoder, driven the way
 * net/httpd.c drives them.
 *
 * Input: the bytes a client sends. The first byte picks how they arrive
 * (all at once, or in pieces of 1 to 255 bytes), the rest is the stream.
 *
 * Invariants: however the bytes are split, the outcome is the same (status,
 * fields, body, bytes consumed); an accepted head has only token field
 * names and values free of NUL, CR, LF and surrounding whitespace, all
 * within the head; a refusal has a reason and one of the statuses the
 * server answers; a decoded body is no longer than its raw form and within
 * the limit.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "net/http_parse.h"

#define MAX_FIELD_BYTES 512
#define MAX_BODY        1024
#define MAX_TRAILER     256

struct result {
    int status; /* 0 accepted, -1 incomplete */
    size_t head;
    size_t consumed;
    size_t nfields;
    size_t body_len;
    char body[MAX_BODY];
    struct cg_hp_request rq;
};

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void run(const uint8_t *data, size_t size, size_t step, struct result *res)
{
    memset(res, 0, sizeof *res);
    res->status = -1;
    char *buf = malloc(size + 1);
    FZ_CHECK(buf != NULL);
    if (size)
        memcpy(buf, data, size);
    struct cg_hp_scan scan;
    memset(&scan, 0, sizeof scan);
    struct cg_hp_chunked ch;
    memset(&ch, 0, sizeof ch);
    size_t avail = 0;
    const char *why = NULL;
    while (avail < size) {
        avail = avail + step < size ? avail + step : size;
        if (res->head == 0) {
            long end = cg_hp_head_end(&scan, buf, avail);
            if (end < 0) {
                res->status = 400;
                break;
            }
            if (end == 0)
                continue;
            FZ_CHECK((size_t)end <= avail && buf[end - 1] == '\n');
            res->head = (size_t)end;
            int st = cg_hp_parse_head(buf, res->head, MAX_FIELD_BYTES, &res->rq, &why);
            if (st != 0) {
                FZ_CHECK(why != NULL);
                FZ_CHECK(st == 400 || st == 413 || st == 417 || st == 431 || st == 501);
                res->status = st;
                break;
            }
            if (res->rq.body == CG_HP_BODY_LENGTH && res->rq.content_length > MAX_BODY) {
                res->status = 413;
                break;
            }
        }
        if (res->rq.body == CG_HP_BODY_NONE) {
            res->consumed = res->head;
            res->status = 0;
            break;
        }
        if (res->rq.body == CG_HP_BODY_LENGTH) {
            if (avail - res->head >= res->rq.content_length) {
                res->body_len = (size_t)res->rq.content_length;
                memcpy(res->body, buf + res->head, res->body_len);
                res->consumed = res->head + res->body_len;
                res->status = 0;
                break;
            }
            continue;
        }
        int st =
            cg_hp_chunked(&ch, buf + res->head, avail - res->head, MAX_BODY, MAX_TRAILER, &why);
        FZ_CHECK(ch.out <= ch.in && ch.in <= avail - res->head && ch.out <= MAX_BODY);
        if (st == 1) {
            res->body_len = ch.out;
            memcpy(res->body, buf + res->head, ch.out);
            res->consumed = res->head + ch.in;
            res->status = 0;
            break;
        }
        if (st != 0) {
            FZ_CHECK(why != NULL && (st == 400 || st == 413 || st == 431));
            res->status = st;
            break;
        }
    }
    if (res->status == 0) {
        const struct cg_hp_request *rq = &res->rq;
        FZ_CHECK(rq->minor == 0 || rq->minor == 1);
        FZ_CHECK(rq->nfields <= CG_HP_MAX_FIELDS && rq->field_bytes <= MAX_FIELD_BYTES);
        FZ_CHECK(rq->target.len > 0 && rq->target.off + rq->target.len < res->head);
        for (size_t i = 0; i < rq->nfields; i++) {
            const struct cg_hp_field *f = &rq->fields[i];
            FZ_CHECK(f->name.len > 0 && f->value.off + f->value.len < res->head);
            FZ_CHECK(buf[f->name.off + f->name.len] == ':');
            for (size_t k = 0; k < f->name.len; k++)
                FZ_CHECK(is_tchar((unsigned char)buf[f->name.off + k]));
            for (size_t k = 0; k < f->value.len; k++) {
                unsigned char c = (unsigned char)buf[f->value.off + k];
                FZ_CHECK(c != 0 && c != '\r' && c != '\n' && c != 0x7f);
            }
            if (f->value.len > 0) {
                char first = buf[f->value.off], last = buf[f->value.off + f->value.len - 1];
                FZ_CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
            }
        }
        /* Transfer-Encoding only on 1.1 and never with Content-Length. */
        if (rq->body == CG_HP_BODY_CHUNKED)
            FZ_CHECK(rq->minor == 1);
        FZ_CHECK(res->consumed <= size);
        res->nfields = rq->nfields;
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    size_t step = data[0] ? data[0] : size;
    data++;
    size--;
    static struct result whole, parts;
    run(data, size, size ? size : 1, &whole);
    run(data, size, step, &parts);
    /* An incomplete stream fed whole stays incomplete in pieces, and the
     * other way round; a refusal may come earlier in pieces only for the
     * same reason (nothing is accepted that the whole refuses). */
    FZ_CHECK(whole.status == parts.status);
    if (whole.status == 0) {
        FZ_CHECK(whole.consumed == parts.consumed && whole.nfields == parts.nfields);
        FZ_CHECK(whole.body_len == parts.body_len);
        FZ_CHECK(memcmp(whole.body, parts.body, whole.body_len) == 0);
        FZ_CHECK(whole.rq.keep_alive == parts.rq.keep_alive && whole.rq.body == parts.rq.body);
    }
    return 0;
}
