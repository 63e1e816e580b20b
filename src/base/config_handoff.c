/*
 * config_handoff.c - the checks of the call-control and hand-off options
 * (VAPI_SERVER_MESSAGES, HANDOFF_NUMBERS): pure functions of the value,
 * used by the option table in config.c (config_int.h).
 */
#include "base/fmacros.h"

#include <string.h>

#include "base/config.h"
#include "base/config_int.h"

/* AssistantOverrides.serverMessages' enum in Vapi's OpenAPI document. */
static const char *const server_message_types[] = {
    "assistant.started",
    "assistant.speechStarted",
    "conversation-update",
    "end-of-call-report",
    "function-call",
    "hang",
    "language-changed",
    "language-change-detected",
    "model-output",
    "phone-call-control",
    "speech-update",
    "status-update",
    "transcript",
    "transcript[transcriptType=\"final\"]",
    "tool-calls",
    "transfer-destination-request",
    "handoff-destination-request",
    "transfer-update",
    "user-interrupted",
    "voice-input",
    "chat.created",
    "chat.deleted",
    "session.created",
    "session.updated",
    "session.deleted",
    "call.deleted",
    "call.delete.failed",
    "call.artifact.upload",
};
#define NTYPES (sizeof server_message_types / sizeof server_message_types[0])

/* Calls item(p, n, arg) for each comma-separated item, spaces around it
 * trimmed; stops at the first reason it returns. */
static const char *each_item(const char *list, const char *(*item)(const char *, size_t, void *),
                             void *arg)
{
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ","), m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m == 0)
            return "has an empty item (two commas, or a comma at an end)";
        const char *why = item(p, m, arg);
        if (why != NULL)
            return why;
        if (p[n] == '\0')
            return NULL;
        p += n + 1;
    }
}

static const char *server_message_item(const char *p, size_t m, void *arg)
{
    unsigned char *seen = arg;
    for (size_t i = 0; i < NTYPES; i++) {
        if (strlen(server_message_types[i]) == m && memcmp(server_message_types[i], p, m) == 0) {
            if (seen[i])
                return "names a message type twice";
            seen[i] = 1;
            return NULL;
        }
    }
    return "has an item that is not a Vapi server message type (see serverMessages in Vapi's "
           "API reference)";
}

const char *cg_config_server_messages(const struct cg_config *cfg)
{
    const char *v = cfg->vapi_server_messages;
    if (v == NULL || strcmp(v, "auto") == 0)
        return CG_SERVER_MESSAGES_AUTO;
    return v;
}

const char *cg_config_check_server_messages(const char *v)
{
    if (strcmp(v, "auto") == 0)
        return NULL;
    if (strlen(v) > 1024)
        return "must be at most 1024 bytes";
    unsigned char seen[NTYPES];
    memset(seen, 0, sizeof seen);
    const char *why = each_item(v, server_message_item, seen);
    if (why != NULL)
        return why;
    static const char *const required[] = {"phone-call-control", "status-update",
                                           "end-of-call-report"};
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++)
        for (size_t i = 0; i < NTYPES; i++)
            if (strcmp(server_message_types[i], required[r]) == 0 && !seen[i])
                return "must include phone-call-control (callgate forwards and hangs up), "
                       "status-update and end-of-call-report (they free the slot)";
    return NULL;
}

/* A destination the assistant may name: a phone number (digits, '+', and
 * " -()." separators, 3 to 40 bytes as Vapi allows) or a sip:/sips: URI. */
static const char *handoff_item(const char *p, size_t m, void *arg)
{
    (void)arg;
    if (m >= 4 && (strncmp(p, "sip:", 4) == 0 || strncmp(p, "sips:", 5) == 0)) {
        if (m > 256)
            return "has a SIP URI longer than 256 bytes";
        for (size_t i = 0; i < m; i++)
            if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f ||
                strchr("\"<>'", p[i]) != NULL)
                return "has a SIP URI with a space, a quote or '<' '>'";
        return NULL;
    }
    if (m < 3 || m > 40)
        return "has a number that is not 3 to 40 characters long";
    size_t digits = 0;
    for (size_t i = 0; i < m; i++) {
        if (p[i] >= '0' && p[i] <= '9')
            digits++;
        else if (strchr("+ -().", p[i]) == NULL)
            return "must be phone numbers (digits, +, spaces, -, parentheses, dots) or sip: "
                   "URIs, "
                   "comma separated";
    }
    return digits >= 3 ? NULL : "has a number with fewer than 3 digits";
}

const char *cg_config_check_handoff_numbers(const char *v)
{
    if (strlen(v) > 4096)
        return "must be at most 4096 bytes";
    return each_item(v, handoff_item, NULL);
}
