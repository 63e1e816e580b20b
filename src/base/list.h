/*
 * list.h - the one intrusive doubly-linked list (as nginx's ngx_queue_t and
 * the Linux kernel's list_head): a struct cg_list member inside each
 * element, a struct cg_list as the head. The list owns nothing: elements
 * are allocated and freed by their owner, who unlinks them first. All
 * operations are O(1); a removed element is left self-linked, so removing
 * it again is harmless.
 *
 *     struct req { ...; struct cg_list link; };
 *     struct cg_list reqs;                 cg_list_init(&reqs);
 *     cg_list_push_back(&reqs, &r->link);
 *     struct cg_list *it, *tmp;
 *     cg_list_foreach_safe(it, tmp, &reqs) {
 *         struct req *r = cg_list_entry(it, struct req, link);
 *         ...                             (may unlink and free r)
 *     }
 */
#ifndef CG_LIST_H
#define CG_LIST_H

#include <stddef.h>

struct cg_list {
    struct cg_list *prev, *next;
};

static inline void cg_list_init(struct cg_list *l)
{
    l->prev = l;
    l->next = l;
}

static inline int cg_list_empty(const struct cg_list *head)
{
    return head->next == head;
}

/* Whether n is on some list (n must have been initialised or inserted). */
static inline int cg_list_linked(const struct cg_list *n)
{
    return n->next != n;
}

static inline void cg_list_push_back(struct cg_list *head, struct cg_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void cg_list_push_front(struct cg_list *head, struct cg_list *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void cg_list_remove(struct cg_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    cg_list_init(n);
}

/* The first element, or NULL when the list is empty. */
static inline struct cg_list *cg_list_first(const struct cg_list *head)
{
    return cg_list_empty(head) ? NULL : head->next;
}

#define cg_list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Iterates over every element; the body may unlink (and free) the current
 * one, not others. */
#define cg_list_foreach_safe(it, tmp, head)                                                        \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
