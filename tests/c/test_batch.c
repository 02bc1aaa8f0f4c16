/*
 * sse_broadcast_many through the C API, read by real loopback clients byte for byte:
 *
 *   delivery   each item reaches its channel's members, in order, with the engine's id
 *              (one number per item, as sse_broadcast one by one) or the caller's own;
 *              the count is the sum over the items; an item nobody gets takes its id
 *   bad items  a NULL channel, a channel that is not UTF-8, an event id with a line
 *              break, NULL items: the documented status, a message naming the item,
 *              and nothing published (no bytes, no ids used, no history)
 *   empty      NULL items with len 0 publish nothing and count 0
 *   replay     a client resuming from before the batch gets its events replayed
 *   shut down  SSE_ERR_SHUT_DOWN after sse_engine_shutdown
 */
#include "testutil.h"

/* A client handed over on `channels` (with `last_event_id`, may be NULL); its response
 * head read and dropped. Returns the client's end, or -1. */
static int open_client(sse_engine *e, const char *const *channels, size_t n,
                       const char *last_event_id) {
    int client = -1, server = -1;
    if (!tcp_pair(&client, &server))
        return -1;
    sse_connect_options o = {0};
    o.channels = channels;
    o.channels_len = n;
    o.last_event_id = last_event_id;
    uint64_t id = 0;
    sse_status s = sse_connect_fd(e, server, &o, &id);
    check_status_at(__FILE__, __LINE__, "sse_connect_fd", s, SSE_OK);
    if (s != SSE_OK) {
        close(server);
        close(client);
        return -1;
    }
    /* The head ends with a blank line; the engine sends nothing else before an event. */
    char head[1024];
    size_t len = 0;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
        struct pollfd p = {client, POLLIN, 0};
        if (len == sizeof head || now_ms() > deadline ||
            poll(&p, 1, 100) < 0 || (p.revents && recv(client, head + len, 1, 0) != 1)) {
            CHECK(false, "no response head");
            close(client);
            return -1;
        }
        if (p.revents)
            len++;
    }
    return client;
}

/* Reads from `fd` until `events` events (blank lines) arrived; returns them in *out. */
static bool read_events(int fd, int events, buf *out) {
    int seen = 0;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    while (seen < events) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno != EINTR)
            return false;
        if (r > 0) {
            char c;
            if (recv(fd, &c, 1, 0) != 1)
                return false;
            buf_add(out, &c, 1);
            if (out->len >= 2 && memcmp(out->data + out->len - 2, "\n\n", 2) == 0)
                seen++;
        } else if (now_ms() > deadline) {
            return false;
        }
    }
    return true;
}

/* Reads `events` events and compares them with `want`. */
static void expect_stream_at(const char *file, int line, int fd, int events, const char *want) {
    buf got = {0};
    bool ok = read_events(fd, events, &got);
    g_checks++;
    if (!ok || got.len != strlen(want) || memcmp(got.data, want, got.len) != 0) {
        g_failures++;
        fprintf(stderr, "%s:%d: stream %s\n", file, line, ok ? "differs" : "incomplete");
        show_diff("stream", got.data ? got.data : "", got.len, want, strlen(want));
    }
    buf_free(&got);
}
#define EXPECT_STREAM(fd, events, want) expect_stream_at(__FILE__, __LINE__, fd, events, want)

/* Nothing (more) arrived on `fd` within a moment. */
static bool quiet(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 100) == 0;
}

static sse_event ev(const char *data, const char *id) {
    sse_event e = {0};
    e.data = data;
    e.data_len = strlen(data);
    e.id = id;
    return e;
}

static sse_publish item(const char *channel, const char *data, const char *id) {
    sse_publish p;
    p.channel = channel;
    p.event = ev(data, id);
    return p;
}

static void check_message_names(const char *want) {
    const char *msg = sse_last_error_message();
    CHECK(strncmp(msg, want, strlen(want)) == 0, "message \"%s\" does not start with \"%s\"",
          msg, want);
}

static void test_batch(void) {
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "no engine");

    static const char *const just_a[] = {"a"};
    static const char *const just_b[] = {"b"};
    static const char *const a_and_b[] = {"a", "b"};
    int ca = open_client(e, just_a, 1, NULL);
    int cab = open_client(e, a_and_b, 2, NULL);
    int cb = open_client(e, just_b, 1, NULL);
    REQUIRE(ca >= 0 && cab >= 0 && cb >= 0, "clients");

    /* A first event tells the engine's epoch and sequence number. */
    size_t n = 0;
    sse_event first = ev("0", NULL);
    CHECK_OK(sse_broadcast(e, "a", &first, &n));
    buf b0 = {0};
    REQUIRE(read_events(ca, 1, &b0), "first event");
    char epoch[64] = {0};
    unsigned long long seq = 0;
    CHECK(sscanf(b0.data, "id: %63[^-]-%llu\n", epoch, &seq) == 2, "engine id in %s", b0.data);
    buf_free(&b0);
    buf skip = {0};
    CHECK(read_events(cab, 1, &skip), "cab's first event");
    buf_free(&skip);

    /* delivery */
    sse_publish items[] = {
        item("a", "1", NULL),
        item("b", "2", NULL),
        item("a", "3", "mine"),
        item("nobody", "4", NULL),
        item("b", "5\nline two", NULL),
    };
    n = 99;
    CHECK_OK(sse_broadcast_many(e, items, sizeof items / sizeof items[0], &n));
    CHECK(n == 2 + 2 + 2 + 0 + 2, "count %zu", n);
    CHECK_OK(sse_broadcast_many(e, items, 1, NULL)); /* out_count may be NULL: "1" again */
    char want[1024];
    snprintf(want, sizeof want,
             "id: %s-%llu\ndata: 1\n\nid: mine\ndata: 3\n\nid: %s-%llu\ndata: 1\n\n", epoch,
             seq + 1, epoch, seq + 6);
    EXPECT_STREAM(ca, 3, want);
    snprintf(want, sizeof want,
             "id: %s-%llu\ndata: 1\n\nid: %s-%llu\ndata: 2\n\nid: mine\ndata: 3\n\n"
             "id: %s-%llu\ndata: 5\ndata: line two\n\nid: %s-%llu\ndata: 1\n\n",
             epoch, seq + 1, epoch, seq + 2, epoch, seq + 5, epoch, seq + 6);
    EXPECT_STREAM(cab, 5, want);
    snprintf(want, sizeof want, "id: %s-%llu\ndata: 2\n\nid: %s-%llu\ndata: 5\ndata: line two\n\n",
             epoch, seq + 2, epoch, seq + 5);
    EXPECT_STREAM(cb, 2, want);

    /* bad items: nothing is published */
    sse_stats before;
    CHECK_OK(sse_get_stats(e, &before));
    sse_publish null_channel[] = {item("a", "x", NULL), item(NULL, "y", NULL)};
    CHECK_ERR(sse_broadcast_many(e, null_channel, 2, &n), SSE_ERR_NULL_POINTER);
    check_message_names("item 1: channel");
    sse_publish bad_utf8[] = {item("a\xff", "x", NULL)};
    CHECK_ERR(sse_broadcast_many(e, bad_utf8, 1, &n), SSE_ERR_INVALID_UTF8);
    check_message_names("item 0: channel");
    sse_publish bad_id[] = {item("a", "x", NULL), item("b", "y", NULL), item("a", "z", "x\ny")};
    CHECK_ERR(sse_broadcast_many(e, bad_id, 3, &n), SSE_ERR_INVALID_ARGUMENT);
    check_message_names("item 2: event id");
    sse_publish bad_data[] = {item("a", "x", NULL)};
    bad_data[0].event.data = NULL;
    CHECK_ERR(sse_broadcast_many(e, bad_data, 1, &n), SSE_ERR_NULL_POINTER);
    check_message_names("item 0: event data");
    CHECK_ERR(sse_broadcast_many(e, NULL, 2, &n), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_broadcast_many(NULL, items, 1, &n), SSE_ERR_NULL_POINTER);
    sse_stats after;
    CHECK_OK(sse_get_stats(e, &after));
    CHECK(after.events_published == before.events_published, "published %llu -> %llu",
          (unsigned long long)before.events_published,
          (unsigned long long)after.events_published);
    CHECK(quiet(ca) && quiet(cab) && quiet(cb), "a bad batch sent bytes");

    /* empty */
    n = 99;
    CHECK_OK(sse_broadcast_many(e, NULL, 0, &n));
    CHECK(n == 0, "empty batch count %zu", n);

    /* The next event takes the next number: the bad batches used none. */
    sse_event later = ev("later", NULL);
    CHECK_OK(sse_broadcast(e, "a", &later, &n));
    snprintf(want, sizeof want, "id: %s-%llu\ndata: later\n\n", epoch, seq + 7);
    EXPECT_STREAM(ca, 1, want);

    /* replay: from the first event on, in publish order, the caller's id kept */
    char resume[96];
    snprintf(resume, sizeof resume, "%s-%llu", epoch, seq);
    int cr = open_client(e, a_and_b, 2, resume);
    REQUIRE(cr >= 0, "resuming client");
    snprintf(want, sizeof want,
             "id: %s-%llu\ndata: 1\n\nid: %s-%llu\ndata: 2\n\nid: mine\ndata: 3\n\n"
             "id: %s-%llu\ndata: 5\ndata: line two\n\nid: %s-%llu\ndata: 1\n\n"
             "id: %s-%llu\ndata: later\n\n",
             epoch, seq + 1, epoch, seq + 2, epoch, seq + 5, epoch, seq + 6, epoch, seq + 7);
    EXPECT_STREAM(cr, 6, want);

    /* shut down */
    CHECK_OK(sse_engine_shutdown(e, 1000));
    CHECK_ERR(sse_broadcast_many(e, items, 1, &n), SSE_ERR_SHUT_DOWN);
    sse_engine_free(e);
    close(ca);
    close(cab);
    close(cb);
    close(cr);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_batch();
    return finish("test_batch");
}
