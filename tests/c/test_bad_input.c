/*
 * Bad input through the C API: every call gets its documented status, nothing crashes,
 * and the sanitizers report nothing.
 *
 *   NULL for every required pointer argument      -> SSE_ERR_NULL_POINTER
 *   fds that are no connected TCP socket          -> SSE_ERR_BAD_SOCKET (fd still the caller's)
 *   malformed names, ids, headers, JSON, channels -> SSE_ERR_INVALID_ARGUMENT
 *   strings that are not UTF-8                    -> SSE_ERR_INVALID_UTF8
 *   unknown client ids                            -> SSE_ERR_NOT_FOUND
 *   limits                                        -> SSE_ERR_LIMIT_REACHED (fd taken)
 *   every call after shutdown, shutdown twice     -> SSE_ERR_SHUT_DOWN (not sse_metrics,
 *                                                    sse_get_stats: they work after it)
 *   bad filters, non-object metadata, bad config  -> SSE_ERR_INVALID_ARGUMENT
 *   Last-Event-IDs / ids: > 256 bytes, not printable ASCII -> SSE_ERR_INVALID_ARGUMENT
 *   registry queries from the lifecycle callback  -> SSE_ERR_INVALID_ARGUMENT (no deadlock)
 * and every error leaves a fresh, non-empty sse_last_error_message(). Every string the
 * library returns is freed with sse_string_free (the leak checker sees any that is not).
 *
 * About NUL bytes: event names, ids, channels and users are NUL-terminated C strings, so
 * a NUL can never be *inside* one: "ab\0cd" is the id "ab" to the library (checked below).
 * Event data is a pointer and a length, so NUL bytes inside data are allowed and sent.
 */
#include "testutil.h"

#include <limits.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

/* A new engine with heartbeats and engine ids off (nothing but the tests' own bytes on
 * the wire). */
static sse_engine *new_engine(size_t max_clients, size_t max_per_channel) {
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    cfg.auto_ids = false;
    cfg.max_clients = max_clients;
    cfg.max_clients_per_channel = max_per_channel;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    CHECK(e != NULL, "sse_engine_new returned OK without an engine");
    return e;
}

/* Hands the server end of a new loopback pair over with the given channels. */
static bool connect_client(sse_engine *e, const char *channel, uint64_t *id, int *client) {
    int server = -1;
    if (!tcp_pair(client, &server))
        return false;
    sse_connect_options o = {0};
    const char *channels[] = {channel};
    o.channels = channels;
    o.channels_len = channel ? 1 : 0;
    sse_status s = sse_connect_fd(e, server, &o, id);
    check_status_at(__FILE__, __LINE__, "sse_connect_fd(connect_client)", s, SSE_OK);
    if (s != SSE_OK) {
        close(server);
        close(*client);
        return false;
    }
    return true;
}

/* The client end received nothing (the hand-over never happened). */
static bool nothing_received(int client) {
    char c;
    ssize_t n = recv(client, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ------------------------------------------------------------------------------------ */
/* Functions without an engine                                                           */
/* ------------------------------------------------------------------------------------ */

static void test_static_functions(void) {
    static const char *const names[] = {"ok",          "null pointer", "invalid argument",
                                        "invalid UTF-8", "bad socket",  "not found",
                                        "limit reached", "shut down",   "I/O error",
                                        "internal panic", "out of range"};
    const char *seen[11] = {0};
    for (int s = SSE_OK; s <= SSE_ERR_OUT_OF_RANGE; s++) {
        const char *str = sse_status_str(s);
        CHECK(str != NULL && str[0] != '\0', "sse_status_str(%d) is NULL or empty", s);
        if (str == NULL)
            continue;
        CHECK(strcmp(str, names[s]) == 0, "sse_status_str(%d) = \"%s\", expected \"%s\"", s,
              str, names[s]);
        CHECK(strcmp(str, "unknown status") != 0, "sse_status_str(%d) says unknown", s);
        for (int k = 0; k < s; k++)
            CHECK(seen[k] == NULL || strcmp(seen[k], str) != 0,
                  "sse_status_str(%d) and (%d) are both \"%s\"", k, s, str);
        seen[s] = str;
    }
    const int unknown[] = {42, 11, -1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *str = sse_status_str(unknown[i]);
        CHECK(str != NULL && strcmp(str, "unknown status") == 0,
              "sse_status_str(%d) = \"%s\"", unknown[i], str ? str : "(null)");
    }

    const char *v = sse_version();
    CHECK(v != NULL && v[0] != '\0', "sse_version() is NULL or empty");
    unsigned major, minor, patch;
    CHECK(v != NULL && sscanf(v, "%u.%u.%u", &major, &minor, &patch) == 3,
          "sse_version() = \"%s\" is not MAJOR.MINOR.PATCH", v ? v : "(null)");

    CHECK(sse_last_error_message() != NULL, "sse_last_error_message() is NULL");
    sse_engine_free(NULL); /* a no-op; must not crash */
    CHECK(true, "sse_engine_free(NULL) returned");
}

/* The message is per thread: another thread's errors do not touch this one's. */
typedef struct thread_result {
    char before[256];
    char after[256];
    sse_status status;
} thread_result;

static void *error_thread(void *arg) {
    thread_result *r = arg;
    snprintf(r->before, sizeof r->before, "%s", sse_last_error_message());
    r->status = sse_config_init(NULL);
    snprintf(r->after, sizeof r->after, "%s", sse_last_error_message());
    return NULL;
}

static void test_thread_local_error(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    CHECK_ERR(sse_disconnect(e, 777), SSE_ERR_NOT_FOUND);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", sse_last_error_message());
    thread_result r = {0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, error_thread, &r) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(r.before[0] == '\0', "a new thread's last error is \"%s\", expected \"\"", r.before);
    CHECK(r.status == SSE_ERR_NULL_POINTER && r.after[0] != '\0',
          "the thread's own error: status %d, message \"%s\"", r.status, r.after);
    CHECK(strcmp(sse_last_error_message(), mine) == 0,
          "this thread's message changed to \"%s\" (was \"%s\")", sse_last_error_message(),
          mine);
    CHECK(strcmp(mine, r.after) != 0, "both threads have the message \"%s\"", mine);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Configuration                                                                         */
/* ------------------------------------------------------------------------------------ */

static void test_config(void) {
    CHECK_ERR(sse_config_init(NULL), SSE_ERR_NULL_POINTER);

    sse_config d;
    memset(&d, 0xab, sizeof d);
    CHECK_OK(sse_config_init(&d));
    CHECK(d.threads == 1, "default threads %u", d.threads);
    CHECK(d.heartbeat_ms == 15000, "default heartbeat_ms %u", d.heartbeat_ms);
    CHECK(d.retry_ms == 0, "default retry_ms %u", d.retry_ms);
    CHECK(d.write_timeout_ms == 30000, "default write_timeout_ms %u", d.write_timeout_ms);
    CHECK(d.busy_retry_after_s == 5, "default busy_retry_after_s %u", d.busy_retry_after_s);
    CHECK(d.max_queue_bytes == 1024 * 1024, "default max_queue_bytes %zu", d.max_queue_bytes);
    CHECK(d.max_clients == 0, "default max_clients %zu", d.max_clients);
    CHECK(d.max_clients_per_channel == 0, "default max_clients_per_channel %zu",
          d.max_clients_per_channel);
    CHECK(d.auto_ids == true, "default auto_ids %d", d.auto_ids);
    CHECK(d.history_max_events == 1000, "default history_max_events %u", d.history_max_events);
    CHECK(d.history_max_age_ms == 300000, "default history_max_age_ms %u", d.history_max_age_ms);
    CHECK(d.max_replay == 1000, "default max_replay %u", d.max_replay);
    CHECK(d.gap_event != NULL && strcmp(d.gap_event, "sse-gap") == 0, "default gap_event %s",
          d.gap_event ? d.gap_event : "NULL");

    /* out_engine is required, with or without a config. */
    CHECK_ERR(sse_engine_new(NULL, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_engine_new(&d, NULL), SSE_ERR_NULL_POINTER);

    struct {
        const char *what;
        sse_config c;
        sse_status expected;
    } bad[16];
    size_t n = 0;
    bad[n].what = "threads = 0";
    bad[n].c = d;
    bad[n++].c.threads = 0;
    bad[n].what = "threads = 65";
    bad[n].c = d;
    bad[n++].c.threads = 65;
    bad[n].what = "max_queue_bytes = 10";
    bad[n].c = d;
    bad[n++].c.max_queue_bytes = 10;
    bad[n].what = "max_queue_bytes = 1023";
    bad[n].c = d;
    bad[n++].c.max_queue_bytes = 1023;
    bad[n].what = "threads = 0 and max_queue_bytes = 10";
    bad[n].c = d;
    bad[n].c.threads = 0;
    bad[n++].c.max_queue_bytes = 10;
    bad[n].what = "all zero (not from sse_config_init)";
    memset(&bad[n++].c, 0, sizeof(sse_config));
    bad[n].what = "max_replay = 0";
    bad[n].c = d;
    bad[n++].c.max_replay = 0;
    bad[n].what = "gap_event \"\"";
    bad[n].c = d;
    bad[n++].c.gap_event = "";
    bad[n].what = "gap_event with LF";
    bad[n].c = d;
    bad[n++].c.gap_event = "a\nb";
    bad[n].what = "gap_event with CR";
    bad[n].c = d;
    bad[n++].c.gap_event = "gap\r";
    static char long_gap[1026];
    memset(long_gap, 'g', sizeof long_gap - 1);
    bad[n].what = "gap_event of 1025 bytes";
    bad[n].c = d;
    bad[n++].c.gap_event = long_gap;
    /* Numbers out of their range; the rest is malformed. */
    for (size_t i = 0; i < n; i++)
        bad[i].expected = i <= 6 ? SSE_ERR_OUT_OF_RANGE : SSE_ERR_INVALID_ARGUMENT;
    /* UTF-8 is checked before the engine's own validation (the second has threads = 0). */
    bad[n].what = "gap_event not UTF-8";
    bad[n].c = d;
    bad[n].c.gap_event = "gap\xff";
    bad[n++].expected = SSE_ERR_INVALID_UTF8;
    bad[n].what = "gap_event not UTF-8 and threads = 0";
    bad[n].c = d;
    bad[n].c.threads = 0;
    bad[n].c.gap_event = "\xc3\x28";
    bad[n++].expected = SSE_ERR_INVALID_UTF8;
    for (size_t i = 0; i < n; i++) {
        sse_engine *e = (sse_engine *)&bad[i]; /* a sentinel: must stay as it is */
        sse_engine *const sentinel = e;
        arm_last_error();
        sse_status s = sse_engine_new(&bad[i].c, &e);
        char label[128];
        snprintf(label, sizeof label, "sse_engine_new(%s)", bad[i].what);
        check_status_at(__FILE__, __LINE__, label, s, bad[i].expected);
        CHECK(e == sentinel, "%s wrote *out_engine on failure", label);
        if (s == SSE_OK && e != sentinel)
            sse_engine_free(e);
    }

    /* The edges that are valid. */
    sse_config ok = d;
    ok.threads = 64;
    ok.max_queue_bytes = 1024;
    ok.heartbeat_ms = 0;
    ok.write_timeout_ms = 0;
    ok.max_replay = 1;
    ok.auto_ids = false;
    ok.history_max_events = 0; /* history off */
    ok.history_max_age_ms = 0;
    ok.gap_event = NULL; /* no gap event */
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&ok, &e));
    sse_engine_free(e); /* without a shutdown first: free does it */
    /* gap_event is copied: the caller's buffer may go away after sse_engine_new. */
    char name[16] = "my-gap";
    ok = d;
    ok.gap_event = name;
    ok.history_max_events = UINT32_MAX;
    ok.history_max_age_ms = UINT32_MAX;
    ok.max_replay = UINT32_MAX;
    e = NULL;
    CHECK_OK(sse_engine_new(&ok, &e));
    memset(name, 'x', sizeof name - 1);
    int client = -1, server = -1;
    if (e != NULL && tcp_pair(&client, &server)) {
        sse_connect_options o = {0};
        o.last_event_id = "not-in-history";
        uint64_t id = 0;
        CHECK_OK(sse_connect_fd(e, server, &o, &id));
        CHECK_OK(sse_disconnect(e, id));
        char *got = NULL;
        size_t len = 0;
        CHECK(read_to_eof(client, &got, &len, TIMEOUT_MS), "stream did not end");
        /* After the head: the gap event, with its id (the position it resumes from). */
        static const char gap[] = "\nevent: my-gap\n"
                                  "data: {\"lastEventId\":\"not-in-history\"}\n\n";
        const char *body = got != NULL ? strstr(got, "\r\n\r\n") : NULL;
        CHECK(body != NULL && strncmp(body + 4, "id: ", 4) == 0 && len >= sizeof gap - 1 &&
                  memcmp(got + len - (sizeof gap - 1), gap, sizeof gap - 1) == 0,
              "the gap event is not the name given in the config (%zu bytes)", len);
        free(got);
        close(client);
    }
    sse_engine_free(e);
    e = NULL;
    CHECK_OK(sse_engine_new(NULL, &e)); /* NULL config = the defaults */
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* NULL for every required pointer                                                       */
/* ------------------------------------------------------------------------------------ */

static void noop_callback(const sse_lifecycle_event *event, void *user_data) {
    (void)event;
    (void)user_data;
}

static void test_null_pointers(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    int client = -1;
    uint64_t id = 0;
    if (!connect_client(e, "news", &id, &client)) {
        sse_engine_free(e);
        return;
    }
    sse_event ev = data_event("x");
    sse_event ev_null_data = {0};
    ev_null_data.data_len = 1; /* data NULL but a length: not "no data" */
    size_t count = 0;
    bool changed = false;
    sse_stats stats;

    /* The engine handle. */
    CHECK_ERR(sse_engine_shutdown(NULL, 0), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_engine_shutdown_with_event(NULL, 0, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_engine_shutdown_with_event(NULL, 0, &ev), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_connect_fd(NULL, -1, NULL, &id), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_send_to_client(NULL, id, &ev), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_send_to_user(NULL, "u", &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast(NULL, "news", &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_all(NULL, &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_subscribe(NULL, id, "c", &changed), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_unsubscribe(NULL, id, "c", &changed), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_disconnect(NULL, id), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_client_count(NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_channel_count(NULL, "news", &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_user_count(NULL, "u", &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_get_stats(NULL, &stats), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_set_event_callback(NULL, noop_callback, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_set_event_callback(NULL, NULL, NULL), SSE_ERR_NULL_POINTER);

    /* Events. */
    CHECK_ERR(sse_send_to_client(e, id, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_send_to_user(e, "u", NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast(e, "news", NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_all(e, NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_send_to_client(e, id, &ev_null_data), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_send_to_user(e, "u", &ev_null_data, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast(e, "news", &ev_null_data, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_all(e, &ev_null_data, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_engine_shutdown_with_event(e, 0, &ev_null_data), SSE_ERR_NULL_POINTER);

    /* Strings. */
    CHECK_ERR(sse_send_to_user(e, NULL, &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast(e, NULL, &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_subscribe(e, id, NULL, &changed), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_unsubscribe(e, id, NULL, &changed), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_channel_count(e, NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_user_count(e, NULL, &count), SSE_ERR_NULL_POINTER);

    /* Required out-parameters. */
    CHECK_ERR(sse_client_count(e, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_channel_count(e, "news", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_user_count(e, "u", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_get_stats(e, NULL), SSE_ERR_NULL_POINTER);
    {
        int c2 = -1, s2 = -1;
        if (tcp_pair(&c2, &s2)) {
            int flags = fcntl(s2, F_GETFL);
            CHECK_ERR(sse_connect_fd(e, s2, NULL, NULL), SSE_ERR_NULL_POINTER);
            CHECK(fd_is_open(s2) && fcntl(s2, F_GETFL) == flags,
                  "fd touched after SSE_ERR_NULL_POINTER");
            CHECK(nothing_received(c2), "bytes sent on a refused hand-over");
            close(s2);
            close(c2);
        }
    }

    /* The history, registry and metrics functions. A returned string must stay unwritten. */
    count = 4242;
    char *const unset = (char *)&count; /* a sentinel, never freed */
    char *json = unset;
    CHECK_ERR(sse_broadcast_where(NULL, "news", "{}", &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_where(e, NULL, "{}", &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_where(e, "news", NULL, &ev, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_where(e, "news", "{}", NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_where(e, "news", "{}", &ev_null_data, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_configure_channel(NULL, "news", 1, 1), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_configure_channel(e, NULL, 1, 1), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_set_metadata(NULL, id, "{}"), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_set_metadata(NULL, id, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_close_channel(NULL, "news", false, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_close_channel(NULL, "news", true, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_close_channel(e, NULL, false, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_close_channel(e, NULL, true, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_remove_empty_channels(NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_remove_empty_channels(NULL, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_get_client(NULL, id, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_get_client(e, id, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_get_client(e, 999999, NULL), SSE_ERR_NULL_POINTER); /* NULL before NOT_FOUND */
    CHECK_ERR(sse_clients(NULL, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients(e, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_in(NULL, "news", &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_in(e, NULL, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_in(e, "news", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_in(e, "", NULL), SSE_ERR_NULL_POINTER); /* NULL before validation */
    CHECK_ERR(sse_clients_of(NULL, "u", &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_of(e, NULL, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_of(e, "u", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_of(e, "", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_channels(NULL, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_channels(e, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_metrics(NULL, &json), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_metrics(e, NULL), SSE_ERR_NULL_POINTER);
    /* Arguments are checked in parameter order: a bad string before a NULL pointer is
     * reported as the bad string. */
    {
        struct {
            const char *what;
            sse_status got;
        } order[4];
        order[0].what = "sse_broadcast_where(e, \"\\xff\", \"{}\", NULL, &count)";
        order[0].got = sse_broadcast_where(e, "\xff", "{}", NULL, &count);
        order[1].what = "sse_broadcast_where(e, \"news\", \"\\xff\", NULL, &count)";
        order[1].got = sse_broadcast_where(e, "news", "\xff", NULL, &count);
        order[2].what = "sse_clients_in(e, \"\\xff\", NULL)";
        order[2].got = sse_clients_in(e, "\xff", NULL);
        order[3].what = "sse_clients_of(e, \"\\xff\", NULL)";
        order[3].got = sse_clients_of(e, "\xff", NULL);
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            CHECK(order[i].got == SSE_ERR_INVALID_UTF8, "%s returned %s", order[i].what,
                  sse_status_str((int)order[i].got));
        }
    }
    CHECK(json == unset, "an out-string was written by a call that failed");
    CHECK(count == 4242, "out_count written by a call that failed");
    sse_string_free(NULL); /* a no-op */

    /* Optional pointers really are optional. */
    CHECK_OK(sse_broadcast_where(e, "news", "{}", &ev, NULL));
    CHECK_OK(sse_close_channel(e, "nothing-here", false, NULL));
    CHECK_OK(sse_remove_empty_channels(e, NULL));
    CHECK_OK(sse_set_metadata(e, id, NULL)); /* NULL clears the metadata */
    CHECK_OK(sse_send_to_user(e, "u", &ev, NULL));
    CHECK_OK(sse_broadcast(e, "news", &ev, NULL));
    CHECK_OK(sse_broadcast_all(e, &ev, NULL));
    CHECK_OK(sse_subscribe(e, id, "c", NULL));
    CHECK_OK(sse_unsubscribe(e, id, "c", NULL));
    sse_event empty = {0}; /* data NULL with data_len 0: an empty event */
    CHECK_OK(sse_send_to_client(e, id, &empty));
    CHECK_OK(sse_set_event_callback(e, NULL, NULL)); /* NULL removes the callback */

    close(client);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* NULLs inside sse_connect_options, and malformed options: the fd stays the caller's. */
static void test_connect_options(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    int client = -1, server = -1;
    if (!tcp_pair(&client, &server)) {
        CHECK(false, "loopback pair");
        sse_engine_free(e);
        return;
    }
    const int flags = fcntl(server, F_GETFL);
    char long_name[1100];
    memset(long_name, 'c', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    char id_300[301], id_257[258], id_256[257];
    memset(id_300, 'i', sizeof id_300 - 1);
    id_300[sizeof id_300 - 1] = '\0';
    memset(id_257, 'i', sizeof id_257 - 1);
    id_257[sizeof id_257 - 1] = '\0';
    memset(id_256, 'i', sizeof id_256 - 1);
    id_256[sizeof id_256 - 1] = '\0';

    const char *ch_null[] = {NULL};
    const char *ch_ok_null[] = {"ok", NULL};
    const char *ch_empty[] = {""};
    const char *ch_bad_utf8[] = {"\xff"};
    const char *ch_bad_utf8_2[] = {"news", "caf\xc3"};
    const char *ch_long[] = {long_name};
    sse_header h_name_null[] = {{NULL, "v"}};
    sse_header h_value_null[] = {{"X-A", NULL}};

    struct {
        const char *what;
        sse_connect_options o;
        sse_status expected;
    } cases[64];
    size_t n = 0;
#define OPT(desc, status, ...)                                                            \
    do {                                                                                  \
        cases[n].what = (desc);                                                           \
        cases[n].o = (sse_connect_options){__VA_ARGS__};                                  \
        cases[n].expected = (status);                                                     \
        n++;                                                                              \
    } while (0)
#define HDR(name, value) (const sse_header[]){{(name), (value)}}

    OPT("channels NULL with channels_len 1", SSE_ERR_NULL_POINTER, .channels_len = 1);
    OPT("channel name NULL", SSE_ERR_NULL_POINTER, .channels = ch_null, .channels_len = 1);
    OPT("second channel name NULL", SSE_ERR_NULL_POINTER, .channels = ch_ok_null,
        .channels_len = 2);
    OPT("headers NULL with headers_len 1", SSE_ERR_NULL_POINTER, .headers_len = 1);
    OPT("header name NULL", SSE_ERR_NULL_POINTER, .headers = h_name_null, .headers_len = 1);
    OPT("header value NULL", SSE_ERR_NULL_POINTER, .headers = h_value_null, .headers_len = 1);
    OPT("empty channel", SSE_ERR_INVALID_ARGUMENT, .channels = ch_empty, .channels_len = 1);
    OPT("channel not UTF-8 (\\xff)", SSE_ERR_INVALID_UTF8, .channels = ch_bad_utf8,
        .channels_len = 1);
    OPT("channel with a truncated sequence", SSE_ERR_INVALID_UTF8, .channels = ch_bad_utf8_2,
        .channels_len = 2);
    OPT("channel of 1099 bytes", SSE_ERR_INVALID_ARGUMENT, .channels = ch_long,
        .channels_len = 1);
    OPT("empty user", SSE_ERR_INVALID_ARGUMENT, .user = "");
    OPT("user not UTF-8", SSE_ERR_INVALID_UTF8, .user = "al\xffice");
    OPT("metadata \"{\"", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "{");
    OPT("metadata \"\"", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "");
    OPT("metadata an array", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "[1,2]");
    OPT("metadata a number", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "42");
    OPT("metadata null", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "null");
    OPT("metadata trailing garbage", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "{} x");
    OPT("metadata missing value", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "{\"a\":}");
    OPT("metadata not UTF-8", SSE_ERR_INVALID_UTF8, .metadata_json = "{\"a\":\"\xff\"}");
    OPT("header value with CRLF", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("X-A", "a\r\nInjected: 1"), .headers_len = 1);
    OPT("header value with LF", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("X-A", "a\nb"),
        .headers_len = 1);
    OPT("header value with CR", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("X-A", "a\rb"),
        .headers_len = 1);
    OPT("header value not UTF-8", SSE_ERR_INVALID_UTF8, .headers = HDR("X-A", "\xff"),
        .headers_len = 1);
    OPT("header name with a space", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("Bad Name", "v"),
        .headers_len = 1);
    OPT("header name empty", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("", "v"),
        .headers_len = 1);
    OPT("header name with a colon", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("X-A:", "v"),
        .headers_len = 1);
    OPT("header name with CRLF", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("X\r\nY", "v"),
        .headers_len = 1);
    OPT("header name not UTF-8", SSE_ERR_INVALID_UTF8, .headers = HDR("X-\xff", "v"),
        .headers_len = 1);
    OPT("duplicate Content-Type", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("Content-Type", "text/html"), .headers_len = 1);
    OPT("duplicate content-type (lower case)", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("content-type", "text/event-stream"), .headers_len = 1);
    OPT("duplicate Cache-Control", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("CACHE-CONTROL", "max-age=0"), .headers_len = 1);
    OPT("duplicate Connection", SSE_ERR_INVALID_ARGUMENT, .headers = HDR("Connection", "close"),
        .headers_len = 1);
    OPT("duplicate X-Accel-Buffering", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("X-Accel-Buffering", "yes"), .headers_len = 1);
    OPT("duplicate Content-Length", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("Content-Length", "0"), .headers_len = 1);
    OPT("duplicate Transfer-Encoding", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("Transfer-Encoding", "chunked"), .headers_len = 1);
    OPT("Last-Event-ID with LF", SSE_ERR_INVALID_ARGUMENT, .last_event_id = "4\n2");
    OPT("Last-Event-ID with CR", SSE_ERR_INVALID_ARGUMENT, .last_event_id = "4\r2");
    OPT("Last-Event-ID not UTF-8", SSE_ERR_INVALID_UTF8, .last_event_id = "\xc3\x28");
    OPT("Last-Event-ID of 300 bytes", SSE_ERR_INVALID_ARGUMENT, .last_event_id = id_300);
    OPT("Last-Event-ID of 257 bytes", SSE_ERR_INVALID_ARGUMENT, .last_event_id = id_257);
    OPT("Last-Event-ID not ASCII", SSE_ERR_INVALID_ARGUMENT, .last_event_id = "caf\xc3\xa9");
    OPT("Last-Event-ID with a tab", SSE_ERR_INVALID_ARGUMENT, .last_event_id = "a\tb");
    OPT("Last-Event-ID with DEL", SSE_ERR_INVALID_ARGUMENT, .last_event_id = "a\x7f");
    OPT("Last-Event-ID with a control character", SSE_ERR_INVALID_ARGUMENT,
        .last_event_id = "\x01");
    OPT("metadata a string", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "\"s\"");
    OPT("metadata true", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "true");
    OPT("metadata two objects", SSE_ERR_INVALID_ARGUMENT, .metadata_json = "{}{}");
    /* Valid edges (the loop hands them over and starts again with a fresh pair). */
    OPT("Last-Event-ID of 256 bytes", SSE_OK, .last_event_id = id_256);
    OPT("Last-Event-ID of printable ASCII with spaces", SSE_OK,
        .last_event_id = " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ ");
    OPT("headers given with head_sent", SSE_ERR_INVALID_ARGUMENT,
        .headers = HDR("X-A", "v"), .headers_len = 1, .head_sent = true);
#undef OPT
#undef HDR

    for (size_t i = 0; i < n; i++) {
        uint64_t id = 4242;
        char label[160];
        snprintf(label, sizeof label, "sse_connect_fd(options: %s)", cases[i].what);
        arm_last_error();
        sse_status s = sse_connect_fd(e, server, &cases[i].o, &id);
        check_status_at(__FILE__, __LINE__, label, s, cases[i].expected);
        if (s == SSE_OK) {
            /* The engine owns it now: start over with a fresh pair. */
            close(client);
            if (!tcp_pair(&client, &server)) {
                CHECK(false, "loopback pair");
                break;
            }
            continue;
        }
        CHECK(id == 4242, "%s wrote out_client on failure", label);
        CHECK(fd_is_open(server), "%s: fd %d closed although the caller keeps it", label,
              server);
        CHECK(fcntl(server, F_GETFL) == flags, "%s: fd flags changed", label);
        CHECK(nothing_received(client), "%s: bytes were sent to the client", label);
    }

    /* After all that the same fd is still fine to hand over (with odd but valid options). */
    const char *dup_channels[] = {"a", "a", "b"};
    sse_connect_options good = {0};
    good.channels = dup_channels;
    good.channels_len = 3;
    good.user = "u1";
    good.metadata_json = "{\"k\": [1, {\"n\": null}], \"s\": \"caf\xc3\xa9\"}";
    good.headers = (const sse_header[]){{"X-Trace", "abc def"}, {"x-empty", ""}};
    good.headers_len = 2;
    good.last_event_id = "";
    uint64_t id = 0;
    CHECK_OK(sse_connect_fd(e, server, &good, &id));
    size_t count = 0;
    CHECK_OK(sse_channel_count(e, "a", &count));
    CHECK(count == 1, "duplicate channels count once: %zu", count);
    CHECK_OK(sse_user_count(e, "u1", &count));
    CHECK(count == 1, "user_count(u1) %zu", count);
    /* channels_len 0 with channels NULL, and NULL options, are fine. */
    int c2 = -1, s2 = -1;
    if (tcp_pair(&c2, &s2)) {
        CHECK_OK(sse_connect_fd(e, s2, NULL, &id));
        close(c2);
    }
    close(client);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Descriptors that are no connected TCP socket                                          */
/* ------------------------------------------------------------------------------------ */

static void expect_bad_socket(sse_engine *e, int fd, const char *what, bool expect_open) {
    int flags = expect_open ? fcntl(fd, F_GETFL) : -1;
    const char *channels[] = {"news"};
    sse_connect_options o = {0};
    o.channels = channels;
    o.channels_len = 1;
    for (int with_options = 0; with_options < 2; with_options++) {
        uint64_t id = 4242;
        char label[160];
        snprintf(label, sizeof label, "sse_connect_fd(%s%s)", what,
                 with_options ? ", with options" : "");
        arm_last_error();
        sse_status s = sse_connect_fd(e, fd, with_options ? &o : NULL, &id);
        check_status_at(__FILE__, __LINE__, label, s, SSE_ERR_BAD_SOCKET);
        CHECK(id == 4242, "%s wrote out_client on failure", label);
        if (expect_open) {
            CHECK(fd_is_open(fd), "%s: fd %d is no longer open (the caller keeps it)", label,
                  fd);
            CHECK(fcntl(fd, F_GETFL) == flags, "%s: fd flags changed", label);
        }
    }
}

static void test_bad_sockets(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;

    expect_bad_socket(e, -1, "fd -1", false);
    expect_bad_socket(e, INT_MIN, "fd INT_MIN", false);
    expect_bad_socket(e, INT_MAX, "fd INT_MAX", false);

    int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(closed >= 0, "socket");
    close(closed);
    expect_bad_socket(e, closed, "a closed fd", false);
    CHECK(!fd_is_open(closed), "the closed fd %d was opened by the library", closed);

    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0, "pipe");
    expect_bad_socket(e, p[0], "a pipe (read end)", true);
    expect_bad_socket(e, p[1], "a pipe (write end)", true);
    close(p[0]);
    close(p[1]);

    char path[] = "/tmp/sse-bad-input-XXXXXX";
    int file = mkstemp(path);
    REQUIRE(file >= 0, "mkstemp");
    unlink(path);
    expect_bad_socket(e, file, "a regular file", true);
    close(file);

    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        expect_bad_socket(e, devnull, "/dev/null", true);
        close(devnull);
    }
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        expect_bad_socket(e, dir, "a directory", true);
        close(dir);
    }
    int efd = eventfd(0, EFD_CLOEXEC);
    if (efd >= 0) {
        expect_bad_socket(e, efd, "an eventfd", true);
        close(efd);
    }

    uint16_t port = 0;
    int lfd = listen_loopback(&port);
    REQUIRE(lfd >= 0, "listen");
    expect_bad_socket(e, lfd, "a listening socket", true);

    int unconnected = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(unconnected >= 0, "socket");
    expect_bad_socket(e, unconnected, "an unconnected TCP socket", true);
    close(unconnected);

    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(udp >= 0, "socket(UDP)");
    expect_bad_socket(e, udp, "a UDP socket", true);
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    if (connect(udp, (struct sockaddr *)&to, sizeof to) == 0)
        expect_bad_socket(e, udp, "a connected UDP socket", true);
    close(udp);
    close(lfd);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
        expect_bad_socket(e, sv[0], "a Unix stream socket", true);
        close(sv[0]);
        close(sv[1]);
    }

    size_t count = 99;
    CHECK_OK(sse_client_count(e, &count));
    CHECK(count == 0, "client_count %zu after only bad sockets", count);
    sse_stats s = {0};
    CHECK_OK(sse_get_stats(e, &s));
    CHECK(s.connections_total == 0 && s.refused_total == 0,
          "bad sockets counted as connections (%llu) or refusals (%llu)",
          (unsigned long long)s.connections_total, (unsigned long long)s.refused_total);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Events, channels and users                                                            */
/* ------------------------------------------------------------------------------------ */

/* The same event must be refused with `expected` by every function that sends one. */
static void expect_event_refused(sse_engine *e, uint64_t client, const sse_event *ev,
                                 sse_status expected, const char *what, int line) {
    char label[200];
    size_t count = 4242;
#define TRY(fn, call)                                                                     \
    do {                                                                                  \
        snprintf(label, sizeof label, "%s(event: %s) [from line %d]", fn, what, line);    \
        arm_last_error();                                                                 \
        check_status_at(__FILE__, __LINE__, label, (call), expected);                     \
    } while (0)
    TRY("sse_send_to_client", sse_send_to_client(e, client, ev));
    TRY("sse_send_to_user", sse_send_to_user(e, "u1", ev, &count));
    TRY("sse_broadcast", sse_broadcast(e, "news", ev, &count));
    TRY("sse_broadcast_all", sse_broadcast_all(e, ev, &count));
    TRY("sse_broadcast_where", sse_broadcast_where(e, "news", "{}", ev, &count));
    /* A refused last event must not shut the engine down. */
    TRY("sse_engine_shutdown_with_event", sse_engine_shutdown_with_event(e, 0, ev));
#undef TRY
    CHECK(count == 4242, "out_count written on failure (%s)", what);
    size_t n = 0;
    CHECK_OK(sse_client_count(e, &n)); /* still running */
}

#define EXPECT_EVENT_REFUSED(e, client, ev, expected, what)                               \
    expect_event_refused((e), (client), (ev), (expected), (what), __LINE__)

static void test_events(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    int client = -1, server = -1;
    REQUIRE(tcp_pair(&client, &server), "loopback pair");
    sse_connect_options o = {0};
    const char *channels[] = {"news"};
    o.channels = channels;
    o.channels_len = 1;
    o.user = "u1";
    uint64_t id = 0;
    CHECK_OK(sse_connect_fd(e, server, &o, &id));
    char id_257[258], id_256[257];
    memset(id_257, '7', sizeof id_257 - 1);
    id_257[sizeof id_257 - 1] = '\0';
    memset(id_256, '6', sizeof id_256 - 1);
    id_256[sizeof id_256 - 1] = '\0';

    struct {
        const char *what;
        const char *event;
        const char *id;
        const char *data;
        size_t data_len;
        sse_status expected;
    } cases[] = {
        {"name with LF", "a\nb", NULL, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"name with CR", "a\rb", NULL, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"name with CRLF", "a\r\nb", NULL, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"name only LF", "\n", NULL, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"empty name", "", NULL, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id with LF", NULL, "4\n2", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id with CR", NULL, "4\r2", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id only CR", NULL, "\r", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id ending in LF", NULL, "42\n", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id not ASCII", NULL, "caf\xc3\xa9", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id with a tab", NULL, "a\tb", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id with DEL", NULL, "a\x7f", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id with ESC", NULL, "\x1b[0m", "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"id of 257 bytes", NULL, id_257, "x", 1, SSE_ERR_INVALID_ARGUMENT},
        {"name not UTF-8", "\xff", NULL, "x", 1, SSE_ERR_INVALID_UTF8},
        {"id not UTF-8", NULL, "\xc3\x28", "x", 1, SSE_ERR_INVALID_UTF8},
        {"data \\xff", NULL, NULL, "\xff", 1, SSE_ERR_INVALID_UTF8},
        {"data overlong '/'", NULL, NULL, "\xc0\xaf", 2, SSE_ERR_INVALID_UTF8},
        {"data surrogate", NULL, NULL, "\xed\xa0\x80", 3, SSE_ERR_INVALID_UTF8},
        {"data truncated sequence", NULL, NULL, "abc\xe2\x82", 5, SSE_ERR_INVALID_UTF8},
        {"data above U+10FFFF", NULL, NULL, "\xf4\x90\x80\x80", 4, SSE_ERR_INVALID_UTF8},
        {"data cut inside a sequence by data_len", NULL, NULL, "\xc3\xa9", 1,
         SSE_ERR_INVALID_UTF8},
        {"data NULL with data_len 5", NULL, NULL, NULL, 5, SSE_ERR_NULL_POINTER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sse_event ev = {0};
        ev.event = cases[i].event;
        ev.id = cases[i].id;
        ev.data = cases[i].data;
        ev.data_len = cases[i].data_len;
        EXPECT_EVENT_REFUSED(e, id, &ev, cases[i].expected, cases[i].what);
    }

    /* NUL inside data is data (data_len counts it); NUL cannot be inside a C-string id:
     * "ab\0cd" is the id "ab". Neither is an error. */
    static const char nul_data[] = "a\0b";
    sse_event ev = {0};
    ev.data = nul_data;
    ev.data_len = sizeof nul_data - 1;
    size_t count = 0;
    CHECK_OK(sse_send_to_client(e, id, &ev));
    CHECK_OK(sse_broadcast(e, "news", &ev, &count));
    CHECK(count == 1, "broadcast count %zu", count);
    CHECK_OK(sse_broadcast_all(e, &ev, &count));
    CHECK_OK(sse_send_to_user(e, "u1", &ev, &count));
    ev = data_event("x");
    ev.id = "ab\0cd";
    CHECK_OK(sse_send_to_client(e, id, &ev));
    /* Shorter data_len than the string: only data_len bytes count. */
    ev = data_event("abc");
    ev.data_len = 1;
    CHECK_OK(sse_send_to_client(e, id, &ev));
    /* The largest retry value. */
    ev = data_event("r");
    ev.retry_ms = UINT32_MAX;
    CHECK_OK(sse_send_to_client(e, id, &ev));
    /* The longest id, and every printable ASCII character in an id. */
    ev = data_event("i");
    ev.id = id_256;
    CHECK_OK(sse_send_to_client(e, id, &ev));
    ev.id = " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~";
    CHECK_OK(sse_send_to_client(e, id, &ev));

    /* The client reads exactly what those produced, after the response head. */
    static const char expected_tail[] = "data: a\0b\n\n"
                                        "data: a\0b\n\n"
                                        "data: a\0b\n\n"
                                        "data: a\0b\n\n"
                                        "id: ab\ndata: x\n\n"
                                        "data: a\n\n"
                                        "retry: 4294967295\ndata: r\n\n";
    CHECK_OK(sse_disconnect(e, id));
    char *got = NULL;
    size_t got_len = 0;
    CHECK(read_to_eof(client, &got, &got_len, TIMEOUT_MS), "client stream did not end");
    const char *body = got ? memmem(got, got_len, "\r\n\r\n", 4) : NULL;
    buf want = {0};
    buf_add(&want, expected_tail, sizeof expected_tail - 1);
    buf_printf(&want, "id: %s\ndata: i\n\n", id_256);
    buf_str(&want, "id:  !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\ndata: i\n\n");
    size_t tail = want.len;
    CHECK(body != NULL && (size_t)(got + got_len - (body + 4)) == tail &&
              memcmp(body + 4, want.data, tail) == 0,
          "the client did not receive the NUL-data / C-string-id events exactly (%zu bytes)",
          got_len);
    buf_free(&want);
    free(got);
    close(client);

    /* Channel and user arguments. */
    bool changed = false;
    int c2 = -1;
    uint64_t id2 = 0;
    REQUIRE(connect_client(e, "news", &id2, &c2), "second client");
    ev = data_event("x");
    CHECK_ERR(sse_broadcast(e, "", &ev, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_broadcast(e, "\xff", &ev, &count), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast(e, "ne\xe2\x82ws", &ev, &count), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_channel_count(e, "", &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_channel_count(e, "\xff", &count), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_subscribe(e, id2, "", &changed), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_subscribe(e, id2, "\xff", &changed), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_unsubscribe(e, id2, "", &changed), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_unsubscribe(e, id2, "\xff", &changed), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_send_to_user(e, "", &ev, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_send_to_user(e, "\xff", &ev, &count), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_user_count(e, "", &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_user_count(e, "\xff", &count), SSE_ERR_INVALID_UTF8);
    /* A very long name is refused or works; it must not crash. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    REQUIRE(huge != NULL, "out of memory");
    memset(huge, 'h', big);
    huge[big] = '\0';
    sse_status s = sse_channel_count(e, huge, &count);
    CHECK(s == SSE_OK || s == SSE_ERR_INVALID_ARGUMENT, "channel_count(1 MiB name): %s",
          sse_status_str((int)s));
    s = sse_broadcast(e, huge, &ev, &count);
    CHECK(s == SSE_OK || s == SSE_ERR_INVALID_ARGUMENT, "broadcast(1 MiB name): %s",
          sse_status_str((int)s));
    free(huge);

    close(c2);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Filters, metadata and the registry functions                                          */
/* ------------------------------------------------------------------------------------ */

/* Calls a function that returns a string and checks it returned OK with exactly `want`. */
#define CHECK_STRING(call, want)                                                          \
    do {                                                                                  \
        char *json_ = NULL;                                                               \
        sse_status st_ = (call);                                                          \
        check_status_at(__FILE__, __LINE__, #call, st_, SSE_OK);                          \
        CHECK(json_ != NULL && strcmp(json_, (want)) == 0, "%s returned %s, expected %s", \
              #call, json_ ? json_ : "NULL", (want));                                     \
        sse_string_free(json_);                                                           \
    } while (0)

static void test_registry_input(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    CHECK_STRING(sse_clients(e, &json_), "[]");
    CHECK_STRING(sse_channels(e, &json_), "[]");
    int client = -1;
    uint64_t id = 0;
    REQUIRE(connect_client(e, "news", &id, &client), "client");
    sse_event ev = data_event("x");
    size_t count = 4242;

    /* Filters: JSON objects of equalities and {"$in": [...]} only. */
    static const char *const bad_filters[] = {
        "[]",
        "{",
        "{\"a\":{\"$gt\":1}}",
        "{\"a\":{\"$in\":1}}",
        "",
        "   ",
        "1",
        "null",
        "\"s\"",
        "{\"a\":{}}",
        "{\"a\":{\"$in\":[1],\"$nin\":[2]}}",
        "{\"a\":{\"$in\":[1],\"b\":2}}",
        "{\"a\":{\"$in\":\"[1]\"}}",
        "{} x",
        "{\"a\":1,}",
        "{'a':1}",
    };
    for (size_t i = 0; i < sizeof bad_filters / sizeof bad_filters[0]; i++) {
        char label[160];
        snprintf(label, sizeof label, "sse_broadcast_where(filter '%s')", bad_filters[i]);
        arm_last_error();
        sse_status s = sse_broadcast_where(e, "news", bad_filters[i], &ev, &count);
        check_status_at(__FILE__, __LINE__, label, s, SSE_ERR_INVALID_ARGUMENT);
    }
    CHECK(count == 4242, "out_count written by a refused sse_broadcast_where");
    CHECK_ERR(sse_broadcast_where(e, "news", "{\"a\":\"\xff\"}", &ev, &count),
              SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast_where(e, "news", "{\"\xc3\x28\":1}", &ev, &count),
              SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast_where(e, "\xff", "{}", &ev, &count), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast_where(e, "", "{}", &ev, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK(count == 4242, "out_count written by a refused sse_broadcast_where");
    static const char *const good_filters[] = {
        "{}",
        " { } ",
        "{\"a\":{\"$in\":[]}}",
        "{\"a\":{\"$in\":[{\"b\":1},null,\"s\"]}}",
        "{\"a\":null,\"b\":[1,2],\"c\":{\"$in\":[1]}}",
        "{\"caf\xc3\xa9\":\"\xe2\x9c\x93\"}",
    };
    for (size_t i = 0; i < sizeof good_filters / sizeof good_filters[0]; i++) {
        count = 4242;
        char label[160];
        snprintf(label, sizeof label, "sse_broadcast_where(filter '%s')", good_filters[i]);
        sse_status s = sse_broadcast_where(e, "news", good_filters[i], &ev, &count);
        check_status_at(__FILE__, __LINE__, label, s, SSE_OK);
        CHECK(count == 1, "%s: count %zu (members of news)", label, count);
    }
    count = 4242;
    CHECK_OK(sse_broadcast_where(e, "nobody-here", "{}", &ev, &count));
    CHECK(count == 0, "sse_broadcast_where to an empty channel: count %zu", count);

    /* Metadata: a JSON object or NULL. */
    static const char *const bad_metadata[] = {
        "[1]", "42", "null", "\"s\"", "true", "{", "", "{} x", "{\"a\":}", "{}{}",
    };
    for (size_t i = 0; i < sizeof bad_metadata / sizeof bad_metadata[0]; i++) {
        char label[160];
        snprintf(label, sizeof label, "sse_set_metadata('%s')", bad_metadata[i]);
        arm_last_error();
        sse_status s = sse_set_metadata(e, id, bad_metadata[i]);
        check_status_at(__FILE__, __LINE__, label, s, SSE_ERR_INVALID_ARGUMENT);
    }
    CHECK_ERR(sse_set_metadata(e, id, "{\"a\":\"\xff\"}"), SSE_ERR_INVALID_UTF8);
    CHECK_OK(sse_set_metadata(e, id, "{\"k\":[1,{\"n\":null}],\"s\":\"caf\xc3\xa9\"}"));
    /* A refused update leaves the metadata as it was. */
    CHECK_ERR(sse_set_metadata(e, id, "[]"), SSE_ERR_INVALID_ARGUMENT);
    char *json = NULL;
    CHECK_OK(sse_get_client(e, id, &json));
    CHECK(json != NULL &&
              strstr(json, "\"metadata\":{\"k\":[1,{\"n\":null}],\"s\":\"caf\xc3\xa9\"}") != NULL,
          "metadata after a refused update: %s", json ? json : "NULL");
    sse_string_free(json);
    json = NULL;

    /* Channel and user names. */
    char long_name[1100];
    memset(long_name, 'c', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECK_ERR(sse_configure_channel(e, "", 1, 1), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_configure_channel(e, long_name, 1, 1), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_configure_channel(e, "\xff", 1, 1), SSE_ERR_INVALID_UTF8);
    CHECK_OK(sse_configure_channel(e, "c0", 0, 0));
    CHECK_OK(sse_configure_channel(e, "cmax", UINT32_MAX, UINT32_MAX));
    count = 4242;
    CHECK_ERR(sse_close_channel(e, "", false, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_close_channel(e, "", true, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_close_channel(e, long_name, true, &count), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_close_channel(e, "ne\xe2\x82ws", true, &count), SSE_ERR_INVALID_UTF8);
    CHECK(count == 4242, "out_count written by a refused sse_close_channel");
    json = NULL;
    CHECK_ERR(sse_clients_in(e, "", &json), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_clients_in(e, long_name, &json), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_clients_in(e, "\xff", &json), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_clients_of(e, "", &json), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_clients_of(e, long_name, &json), SSE_ERR_INVALID_ARGUMENT);
    CHECK_ERR(sse_clients_of(e, "al\xffice", &json), SSE_ERR_INVALID_UTF8);
    CHECK(json == NULL, "out_json written by a refused call");
    CHECK_STRING(sse_clients_in(e, "unknown-channel", &json_), "[]");
    CHECK_STRING(sse_clients_of(e, "unknown-user", &json_), "[]");
    CHECK_STRING(sse_clients_in(e, "c0", &json_), "[]"); /* configured, no members */

    /* What is there: one client in news; channels news, c0, cmax (history in news). */
    json = NULL;
    CHECK_OK(sse_clients(e, &json));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "[{\"channels\":[\"news\"],");
    CHECK(json != NULL && strncmp(json, prefix, strlen(prefix)) == 0 &&
              strcmp(json + strlen(json) - 2, "}]") == 0,
          "sse_clients: %s", json ? json : "NULL");
    sse_string_free(json);
    json = NULL;
    CHECK_OK(sse_channels(e, &json));
    CHECK(json != NULL && strstr(json, "\"name\":\"c0\"") != NULL &&
              strstr(json, "\"name\":\"cmax\"") != NULL &&
              strstr(json, "\"name\":\"news\"") != NULL,
          "sse_channels: %s", json ? json : "NULL");
    sse_string_free(json);
    count = 4242;
    CHECK_OK(sse_remove_empty_channels(e, &count));
    CHECK(count == 3, "remove_empty_channels removed %zu (c0, cmax, nobody-here)", count);
    close(client);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Unknown client ids                                                                    */
/* ------------------------------------------------------------------------------------ */

static void test_unknown_client(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    int client = -1;
    uint64_t gone = 0;
    REQUIRE(connect_client(e, "news", &gone, &client), "client");
    CHECK_OK(sse_disconnect(e, gone));
    close(client);

    const uint64_t unknown[] = {0, 999999, (UINT64_C(1) << 53), UINT64_MAX, gone};
    sse_event ev = data_event("x");
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        uint64_t id = unknown[i];
        bool changed = true;
        CHECK_ERR(sse_send_to_client(e, id, &ev), SSE_ERR_NOT_FOUND);
        CHECK_ERR(sse_disconnect(e, id), SSE_ERR_NOT_FOUND);
        CHECK_ERR(sse_subscribe(e, id, "news", &changed), SSE_ERR_NOT_FOUND);
        CHECK_ERR(sse_unsubscribe(e, id, "news", &changed), SSE_ERR_NOT_FOUND);
        CHECK(changed, "out_changed written for unknown client %llu", (unsigned long long)id);
        char *json = NULL;
        CHECK_ERR(sse_get_client(e, id, &json), SSE_ERR_NOT_FOUND);
        CHECK(json == NULL, "out_json written for unknown client %llu", (unsigned long long)id);
        sse_string_free(json);
        CHECK_ERR(sse_set_metadata(e, id, "{\"a\":1}"), SSE_ERR_NOT_FOUND);
        CHECK_ERR(sse_set_metadata(e, id, NULL), SSE_ERR_NOT_FOUND);
    }
    size_t count = 99;
    CHECK_OK(sse_channel_count(e, "news", &count));
    CHECK(count == 0, "channel_count(news) %zu: an unknown client joined", count);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* Limits: the engine takes the fd, answers 503 (unless head_sent) and closes it         */
/* ------------------------------------------------------------------------------------ */

static void test_limits(void) {
    sse_engine *e = new_engine(0, 1);
    if (e == NULL)
        return;
    int a = -1, c = -1;
    uint64_t ida = 0, idc = 0;
    REQUIRE(connect_client(e, "c", &ida, &a), "client a");

    for (int head_sent = 0; head_sent < 2; head_sent++) {
        int client = -1, server = -1;
        REQUIRE(tcp_pair(&client, &server), "loopback pair");
        const char *channels[] = {"c"};
        sse_connect_options o = {0};
        o.channels = channels;
        o.channels_len = 1;
        o.head_sent = head_sent;
        uint64_t id = 4242;
        CHECK_ERR(sse_connect_fd(e, server, &o, &id), SSE_ERR_LIMIT_REACHED);
        CHECK(id == 4242, "out_client written on a refused hand-over");
        errno = 0;
        CHECK(!fd_is_open(server) && errno == EBADF,
              "fd %d still open after SSE_ERR_LIMIT_REACHED (head_sent %d)", server,
              head_sent);
        char *got = NULL;
        size_t len = 0;
        CHECK(read_to_eof(client, &got, &len, TIMEOUT_MS), "refused client sees no EOF");
        if (!head_sent)
            CHECK(len > 12 && memcmp(got, "HTTP/1.1 503", 12) == 0 &&
                      memmem(got, len, "\r\nRetry-After: 5\r\n", 18) != NULL,
                  "refused client gets 503 with Retry-After: 5 (%zu bytes)", len);
        else
            CHECK(len == 0, "head_sent: the refused client got %zu bytes, expected none", len);
        free(got);
        close(client);
    }

    REQUIRE(connect_client(e, "d", &idc, &c), "client c");
    bool changed = true;
    CHECK_ERR(sse_subscribe(e, idc, "c", &changed), SSE_ERR_LIMIT_REACHED);
    size_t count = 0;
    CHECK_OK(sse_channel_count(e, "c", &count));
    CHECK(count == 1, "channel_count(c) %zu after a refused subscribe", count);
    CHECK_OK(sse_subscribe(e, ida, "c", &changed)); /* already a member: no change */
    CHECK(!changed, "subscribe of a member reports a change");
    sse_stats s = {0};
    CHECK_OK(sse_get_stats(e, &s));
    CHECK(s.refused_total == 2, "refused_total %llu", (unsigned long long)s.refused_total);
    close(a);
    close(c);
    CHECK_OK(sse_engine_shutdown(e, 0));
    sse_engine_free(e);
}

/* ------------------------------------------------------------------------------------ */
/* The callback may send, but not shut down                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct callback_state {
    pthread_mutex_t mu;
    const sse_engine *engine;
    int calls;
    sse_status shutdown_status;
    sse_status shutdown_event_status;
    sse_status send_status;
    char message[256];
} callback_state;

static void shutdown_callback(const sse_lifecycle_event *event, void *user_data) {
    callback_state *st = user_data;
    if (event->kind != SSE_CONNECTED)
        return;
    sse_event welcome = data_event("welcome");
    sse_status s1 = sse_engine_shutdown(st->engine, 0);
    char message[256];
    snprintf(message, sizeof message, "%s", sse_last_error_message());
    sse_status s2 = sse_engine_shutdown_with_event(st->engine, 0, &welcome);
    sse_status s3 = sse_send_to_client(st->engine, event->client, &welcome);
    pthread_mutex_lock(&st->mu);
    st->calls++;
    st->shutdown_status = s1;
    st->shutdown_event_status = s2;
    st->send_status = s3;
    snprintf(st->message, sizeof st->message, "%s", message);
    pthread_mutex_unlock(&st->mu);
}

static int callback_calls(callback_state *st) {
    pthread_mutex_lock(&st->mu);
    int n = st->calls;
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void test_callback_shutdown(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    callback_state st = {0};
    pthread_mutex_init(&st.mu, NULL);
    st.engine = e;
    CHECK_OK(sse_set_event_callback(e, shutdown_callback, &st));
    int client = -1;
    uint64_t id = 0;
    if (connect_client(e, NULL, &id, &client)) {
        CHECK(WAIT_UNTIL(callback_calls(&st) == 1, TIMEOUT_MS), "callback not called");
        pthread_mutex_lock(&st.mu);
        CHECK(st.shutdown_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_engine_shutdown from the callback: %s", sse_status_str(st.shutdown_status));
        CHECK(st.shutdown_event_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_engine_shutdown_with_event from the callback: %s",
              sse_status_str(st.shutdown_event_status));
        CHECK(st.message[0] != '\0', "no error message on the reactor thread");
        CHECK(st.send_status == SSE_OK, "sse_send_to_client from the callback: %s",
              sse_status_str(st.send_status));
        pthread_mutex_unlock(&st.mu);
        size_t count = 0;
        CHECK_OK(sse_client_count(e, &count)); /* the engine is still running */
        CHECK(count == 1, "client_count %zu", count);
        CHECK_OK(sse_disconnect(e, id));
        char *got = NULL;
        size_t len = 0;
        CHECK(read_to_eof(client, &got, &len, TIMEOUT_MS), "stream did not end");
        CHECK(got != NULL && memmem(got, len, "\r\n\r\ndata: welcome\n\n", 19) != NULL,
              "the event sent from the callback did not arrive");
        free(got);
        close(client);
    }
    CHECK_OK(sse_engine_shutdown(e, 1000));
    sse_engine_free(e);
    pthread_mutex_destroy(&st.mu);
}

/* ------------------------------------------------------------------------------------ */
/* Registry queries from the callback are refused, not deadlocked                        */
/* ------------------------------------------------------------------------------------ */

typedef struct query_state {
    pthread_mutex_t mu;
    const sse_engine *engine;
    int connected_calls;
    int disconnected_calls;
    sse_status get_client_status;
    bool get_client_wrote;
    char message[256];
    sse_status clients_status;
    sse_status clients_in_status;
    sse_status clients_of_status;
    sse_status channels_status;
    sse_status metrics_status;
    sse_status where_status;
    sse_status set_metadata_status;
    sse_status get_client_gone_status;
} query_state;

static void query_callback(const sse_lifecycle_event *event, void *user_data) {
    query_state *st = user_data;
    if (event->kind == SSE_CONNECTED) {
        char *const unset = (char *)st;
        char *json = unset;
        sse_status get = sse_get_client(st->engine, event->client, &json);
        char message[256];
        snprintf(message, sizeof message, "%s", sse_last_error_message());
        bool wrote = json != unset;
        if (get == SSE_OK)
            sse_string_free(json);
        char *list = NULL;
        sse_status all = sse_clients(st->engine, &list);
        if (all == SSE_OK)
            sse_string_free(list);
        list = NULL;
        sse_status in = sse_clients_in(st->engine, "news", &list);
        if (in == SSE_OK)
            sse_string_free(list);
        list = NULL;
        sse_status of = sse_clients_of(st->engine, "u1", &list);
        if (of == SSE_OK)
            sse_string_free(list);
        list = NULL;
        sse_status channels = sse_channels(st->engine, &list);
        if (channels == SSE_OK)
            sse_string_free(list);
        list = NULL;
        sse_status metrics = sse_metrics(st->engine, &list);
        if (metrics == SSE_OK)
            sse_string_free(list);
        sse_event welcome = data_event("welcome");
        sse_status where =
            sse_broadcast_where(st->engine, "news", "{\"vip\":true}", &welcome, NULL);
        sse_status meta = sse_set_metadata(st->engine, event->client, "{\"vip\":true}");
        pthread_mutex_lock(&st->mu);
        st->connected_calls++;
        st->get_client_status = get;
        st->get_client_wrote = wrote;
        snprintf(st->message, sizeof st->message, "%s", message);
        st->clients_status = all;
        st->clients_in_status = in;
        st->clients_of_status = of;
        st->channels_status = channels;
        st->metrics_status = metrics;
        st->where_status = where;
        st->set_metadata_status = meta;
        pthread_mutex_unlock(&st->mu);
    } else if (event->kind == SSE_DISCONNECTED) {
        char *json = NULL;
        sse_status get = sse_get_client(st->engine, event->client, &json);
        if (get == SSE_OK)
            sse_string_free(json);
        pthread_mutex_lock(&st->mu);
        st->disconnected_calls++;
        st->get_client_gone_status = get;
        pthread_mutex_unlock(&st->mu);
    }
}

static int query_calls(query_state *st, bool disconnected) {
    pthread_mutex_lock(&st->mu);
    int n = disconnected ? st->disconnected_calls : st->connected_calls;
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void test_callback_queries(void) {
    sse_engine *e = new_engine(0, 0);
    if (e == NULL)
        return;
    query_state st = {0};
    pthread_mutex_init(&st.mu, NULL);
    st.engine = e;
    CHECK_OK(sse_set_event_callback(e, query_callback, &st));
    int client = -1;
    uint64_t id = 0;
    if (connect_client(e, "news", &id, &client)) {
        CHECK(WAIT_UNTIL(query_calls(&st, false) == 1, TIMEOUT_MS),
              "callback not called (or it deadlocked)");
        pthread_mutex_lock(&st.mu);
        CHECK(st.get_client_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_get_client from the callback: %s", sse_status_str(st.get_client_status));
        CHECK(st.message[0] != '\0', "no error message for sse_get_client from the callback");
        CHECK(!st.get_client_wrote, "sse_get_client from the callback wrote out_json");
        CHECK(st.clients_status == SSE_ERR_INVALID_ARGUMENT, "sse_clients from the callback: %s",
              sse_status_str(st.clients_status));
        CHECK(st.clients_in_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_clients_in from the callback: %s", sse_status_str(st.clients_in_status));
        CHECK(st.clients_of_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_clients_of from the callback: %s", sse_status_str(st.clients_of_status));
        /* sse_channels and sse_metrics do not wait for a reactor: answered or refused,
         * never a deadlock. */
        CHECK(st.channels_status == SSE_OK || st.channels_status == SSE_ERR_INVALID_ARGUMENT,
              "sse_channels from the callback: %s", sse_status_str(st.channels_status));
        CHECK(st.metrics_status == SSE_OK, "sse_metrics from the callback: %s",
              sse_status_str(st.metrics_status));
        /* Sends (filtered too) and metadata updates are allowed. */
        CHECK(st.where_status == SSE_OK, "sse_broadcast_where from the callback: %s",
              sse_status_str(st.where_status));
        CHECK(st.set_metadata_status == SSE_OK, "sse_set_metadata from the callback: %s",
              sse_status_str(st.set_metadata_status));
        pthread_mutex_unlock(&st.mu);
        /* The engine still answers queries from this thread. */
        char *json = NULL;
        CHECK_OK(sse_get_client(e, id, &json));
        CHECK(json != NULL && strstr(json, "\"metadata\":{\"vip\":true}") != NULL,
              "metadata set from the callback: %s", json ? json : "NULL");
        sse_string_free(json);
        CHECK_OK(sse_disconnect(e, id));
        CHECK(WAIT_UNTIL(query_calls(&st, true) == 1, TIMEOUT_MS),
              "DISCONNECTED callback not called (or it deadlocked)");
        pthread_mutex_lock(&st.mu);
        /* Registry queries from the callback are refused; NOT_FOUND for a client that is
         * gone would be an answer from the registry, which the callback cannot have. */
        CHECK(st.get_client_gone_status == SSE_ERR_INVALID_ARGUMENT,
                  "sse_get_client(client) from its SSE_DISCONNECTED callback returned %s; the "
                  "header says registry queries from the callback give "
                  "SSE_ERR_INVALID_ARGUMENT (the client check runs before the callback check)",
                  sse_status_str(st.get_client_gone_status));
        pthread_mutex_unlock(&st.mu);
        char *got = NULL;
        size_t len = 0;
        CHECK(read_to_eof(client, &got, &len, TIMEOUT_MS), "stream did not end");
        /* The filtered welcome was evaluated before the metadata matched: not delivered. */
        CHECK(got != NULL && memmem(got, len, "welcome", 7) == NULL,
              "a filtered event reached a client whose metadata did not match");
        free(got);
        close(client);
    }
    CHECK_OK(sse_engine_shutdown(e, 1000));
    sse_engine_free(e);
    pthread_mutex_destroy(&st.mu);
}

/* ------------------------------------------------------------------------------------ */
/* Every call after shutdown                                                             */
/* ------------------------------------------------------------------------------------ */

static void test_after_shutdown(void) {
    lifecycle_log log;
    log_init(&log);
    sse_engine *e = new_engine(0, 0);
    if (e == NULL) {
        log_destroy(&log);
        return;
    }
    CHECK_OK(sse_set_event_callback(e, log_callback, &log));
    int client = -1;
    uint64_t id = 0;
    REQUIRE(connect_client(e, "news", &id, &client), "client");
    CHECK(WAIT_UNTIL(log_count(&log, SSE_CONNECTED, id, -1) == 1, TIMEOUT_MS), "CONNECTED");

    char *before = NULL; /* freed after sse_engine_free: strings do not belong to it */
    CHECK_OK(sse_clients(e, &before));

    CHECK_OK(sse_engine_shutdown(e, 500));
    CHECK(log_count(&log, SSE_DISCONNECTED, id, SSE_REASON_SHUTDOWN) == 1,
          "the client was not reported DISCONNECTED (shutdown) when shutdown returned");

    sse_event ev = data_event("x");
    size_t count = 4242;
    bool changed = true;
    sse_stats stats;
    CHECK_ERR(sse_engine_shutdown(e, 0), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_engine_shutdown(e, 1000), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_engine_shutdown_with_event(e, 0, NULL), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_engine_shutdown_with_event(e, 0, &ev), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_send_to_client(e, id, &ev), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_send_to_user(e, "u1", &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_broadcast(e, "news", &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_broadcast_all(e, &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_subscribe(e, id, "other", &changed), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_unsubscribe(e, id, "news", &changed), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_disconnect(e, id), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_client_count(e, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_channel_count(e, "news", &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_user_count(e, "u1", &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_set_event_callback(e, log_callback, &log), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_set_event_callback(e, NULL, NULL), SSE_ERR_SHUT_DOWN);
    CHECK(count == 4242 && changed, "out-parameters written by calls after shutdown");

    /* The history, registry and metrics functions. */
    char *const unset = (char *)&count; /* a sentinel, never freed */
    char *json = unset;
    CHECK_ERR(sse_broadcast_where(e, "news", "{}", &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_configure_channel(e, "news", 1, 1), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_set_metadata(e, id, "{}"), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_set_metadata(e, id, NULL), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_close_channel(e, "news", false, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_close_channel(e, "news", true, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_remove_empty_channels(e, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_get_client(e, id, &json), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_get_client(e, 999999, &json), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_clients(e, &json), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_clients_in(e, "news", &json), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_clients_of(e, "u1", &json), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_channels(e, &json), SSE_ERR_SHUT_DOWN);
    CHECK(count == 4242 && json == unset, "out-parameters written by calls after shutdown");
    /* SHUT_DOWN comes before the engine's own validation (the header's check order). */
    CHECK_ERR(sse_broadcast_where(e, "news", "[]", &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_broadcast_where(e, "", "{}", &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_configure_channel(e, "", 1, 1), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_set_metadata(e, id, "[1]"), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_close_channel(e, "", true, &count), SSE_ERR_SHUT_DOWN);
    {
        arm_last_error();
        sse_status s1 = sse_clients_in(e, "", &json);
        arm_last_error();
        sse_status s2 = sse_clients_of(e, "", &json);
        CHECK(s1 == SSE_ERR_SHUT_DOWN && s2 == SSE_ERR_SHUT_DOWN,
                  "after shutdown sse_clients_in(e, \"\", &json) returned %s and "
                  "sse_clients_of(e, \"\", &json) %s; the header's check order (NULL, UTF-8, "
                  "SHUT_DOWN, then validation) says SSE_ERR_SHUT_DOWN",
                  sse_status_str(s1), sse_status_str(s2));
    }
    /* NULL and UTF-8 still come first. */
    CHECK_ERR(sse_clients_in(e, "news", NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_clients_in(e, "\xff", &json), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast_where(e, "news", "{\"a\":\"\xff\"}", &ev, &count),
              SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_broadcast_where(e, "news", "{}", NULL, &count), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_metrics(e, NULL), SSE_ERR_NULL_POINTER);
    CHECK(count == 4242 && json == unset, "out-parameters written by calls after shutdown");

    /* Metrics still work after shutdown, and say how the client left. */
    json = NULL;
    CHECK_OK(sse_metrics(e, &json));
    CHECK(json != NULL &&
              strstr(json, "\nsse_engine_disconnects_total{reason=\"shutdown\"} 1\n") != NULL &&
              strstr(json, "\nsse_engine_connections_open 0\n") != NULL &&
              strstr(json, "\nsse_engine_connections_total 1\n") != NULL,
          "metrics after shutdown:\n%s", json ? json : "NULL");
    sse_string_free(json);
    /* A number that cannot be a descriptor is refused before the engine is asked. */
    CHECK_ERR(sse_connect_fd(e, -1, NULL, &id), SSE_ERR_BAD_SOCKET);
    int c2 = -1, s2 = -1;
    if (tcp_pair(&c2, &s2)) {
        int flags = fcntl(s2, F_GETFL);
        uint64_t id2 = 4242;
        CHECK_ERR(sse_connect_fd(e, s2, NULL, &id2), SSE_ERR_SHUT_DOWN);
        CHECK(id2 == 4242, "out_client written after shutdown");
        CHECK(fd_is_open(s2) && fcntl(s2, F_GETFL) == flags,
              "fd not left untouched by sse_connect_fd after shutdown");
        CHECK(nothing_received(c2), "bytes sent to a client handed over after shutdown");
        close(s2);
        close(c2);
    }
    /* Stats still work, and the last word on the client is "shutdown". */
    memset(&stats, 0xff, sizeof stats);
    CHECK_OK(sse_get_stats(e, &stats));
    CHECK(stats.connections_total == 1, "connections_total %llu",
          (unsigned long long)stats.connections_total);
    CHECK(stats.connections_open == 0, "connections_open %llu",
          (unsigned long long)stats.connections_open);
    CHECK(stats.disconnects_shutdown == 1, "disconnects_shutdown %llu",
          (unsigned long long)stats.disconnects_shutdown);

    char *got = NULL;
    size_t len = 0;
    CHECK(read_to_eof(client, &got, &len, TIMEOUT_MS), "the client saw no EOF after shutdown");
    free(got);
    close(client);
    sse_engine_free(e);
    CHECK(before != NULL && before[0] == '[', "sse_clients before shutdown: %s",
          before ? before : "NULL");
    sse_string_free(before);
    log_destroy(&log);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("sse_engine %s\n", sse_version());
    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"static_functions", test_static_functions},
        {"thread_local_error", test_thread_local_error},
        {"config", test_config},
        {"null_pointers", test_null_pointers},
        {"connect_options", test_connect_options},
        {"bad_sockets", test_bad_sockets},
        {"events", test_events},
        {"registry_input", test_registry_input},
        {"unknown_client", test_unknown_client},
        {"limits", test_limits},
        {"callback_shutdown", test_callback_shutdown},
        {"callback_queries", test_callback_queries},
        {"after_shutdown", test_after_shutdown},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before = g_failures;
        tests[i].run();
        printf("  %-20s %s\n", tests[i].name, g_failures == before ? "ok" : "FAILED");
    }
    return finish("test_bad_input");
}
