/*
 * Stream mode through the C API: the engine drives a client whose bytes the host takes
 * (sse_connect_stream, SSE_READABLE, sse_stream_take, sse_stream_close), and the bad
 * input of those three functions.
 */
#include "testutil.h"

/* Takes `chunk` bytes at a time until `out` holds `want` bytes (or the time is up). */
static void take_until(sse_engine *e, uint64_t client, size_t chunk, size_t want, buf *out) {
    char *scratch = malloc(chunk);
    REQUIRE(scratch != NULL, "malloc");
    int64_t deadline = now_ms() + TIMEOUT_MS;
    while (out->len < want && now_ms() < deadline) {
        size_t n = 0;
        if (sse_stream_take(e, client, (uint8_t *)scratch, chunk, &n) != SSE_OK)
            break;
        if (n == 0)
            sleep_ms(2);
        buf_add(out, scratch, n);
    }
    free(scratch);
}

static void test_take(void) {
    lifecycle_log log;
    log_init(&log);
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    cfg.retry_ms = 700;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    CHECK_OK(sse_set_event_callback(e, log_callback, &log));

    const char *chans[] = {"news"};
    sse_connect_options o = {0};
    o.channels = chans;
    o.channels_len = 1;
    o.user = "ann";
    uint64_t id = 0;
    CHECK_OK(sse_connect_stream(e, &o, &id));
    CHECK(id != 0, "client id");

    /* The retry hint first (no HTTP head in stream mode), then the events, taken in
     * pieces of 5 bytes: the host gets the same byte stream a socket would carry. */
    buf got = {0};
    sse_event ev = data_event("line 1\nline 2");
    ev.event = "update";
    ev.id = "7";
    size_t count = 0;
    CHECK_OK(sse_broadcast(e, "news", &ev, &count));
    CHECK(count == 1, "broadcast count %zu", count);
    CHECK_OK(sse_send_to_user(e, "ann", &ev, &count));
    static const char want[] = "retry: 700\n\n"
                               "id: 7\nevent: update\ndata: line 1\ndata: line 2\n\n"
                               "id: 7\nevent: update\ndata: line 1\ndata: line 2\n\n";
    take_until(e, id, 5, sizeof want - 1, &got);
    CHECK(log_count(&log, SSE_READABLE, id, -1) >= 1, "SSE_READABLE was never reported");
    CHECK_BYTES("stream-mode bytes", got.data, got.len, want, sizeof want - 1);
    buf_free(&got);

    /* The host's response ended: reason closed; the client is gone. */
    CHECK_OK(sse_stream_close(e, id));
    CHECK(WAIT_UNTIL(log_disconnect_reason(&log, id) == SSE_REASON_CLOSED, TIMEOUT_MS),
          "no DISCONNECTED(closed) after sse_stream_close");
    uint8_t small[8];
    size_t n = 0;
    CHECK_ERR(sse_stream_take(e, id, small, sizeof small, &n), SSE_ERR_NOT_FOUND);
    CHECK_ERR(sse_stream_close(e, id), SSE_ERR_NOT_FOUND);

    CHECK_OK(sse_engine_shutdown(e, 1000));
    sse_engine_free(e);
    log_destroy(&log);
}

static void test_bad_input(void) {
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    uint64_t id = 0;
    uint8_t b[16];
    size_t n = 0;
    CHECK_ERR(sse_connect_stream(NULL, NULL, &id), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_connect_stream(e, NULL, NULL), SSE_ERR_NULL_POINTER);
    sse_header h = {"X-A", "1"};
    sse_connect_options o = {0};
    o.headers = &h;
    o.headers_len = 1;
    CHECK_ERR(sse_connect_stream(e, &o, &id), SSE_ERR_INVALID_ARGUMENT);
    const char *bad_chan[] = {"\xff"};
    sse_connect_options o2 = {0};
    o2.channels = bad_chan;
    o2.channels_len = 1;
    CHECK_ERR(sse_connect_stream(e, &o2, &id), SSE_ERR_INVALID_UTF8);
    CHECK_OK(sse_connect_stream(e, NULL, &id));
    CHECK_ERR(sse_stream_take(NULL, id, b, sizeof b, &n), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_stream_take(e, id, NULL, sizeof b, &n), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_stream_take(e, id, b, sizeof b, NULL), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_stream_take(e, id, b, 0, &n), SSE_ERR_OUT_OF_RANGE);
    CHECK_ERR(sse_stream_take(e, 999999, b, sizeof b, &n), SSE_ERR_NOT_FOUND);
    CHECK_ERR(sse_stream_close(NULL, id), SSE_ERR_NULL_POINTER);

    /* A client that owns a socket cannot be taken from. */
    uint16_t port = 0;
    int lfd = listen_loopback(&port);
    REQUIRE(lfd >= 0, "listen");
    int cfd = connect_loopback(port);
    int sfd = accept_timeout(lfd, TIMEOUT_MS);
    REQUIRE(cfd >= 0 && sfd >= 0, "socket pair");
    uint64_t sock_id = 0;
    CHECK_OK(sse_connect_fd(e, sfd, NULL, &sock_id));
    CHECK_ERR(sse_stream_take(e, sock_id, b, sizeof b, &n), SSE_ERR_INVALID_ARGUMENT);

    CHECK_OK(sse_engine_shutdown(e, 0));
    CHECK_ERR(sse_connect_stream(e, NULL, &id), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_stream_take(e, id, b, sizeof b, &n), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_stream_close(e, id), SSE_ERR_SHUT_DOWN);
    sse_engine_free(e);
    close(cfd);
    close(lfd);
}

/* The engine's HTTP rules for hosts that write the response: the stream head, the 503
 * answer and the Last-Event-ID of a request. */
static void test_http_rules(void) {
    char *text = NULL;
    sse_header extra[] = {{"X-Room", "news"}, {"Cache-Control", "private"}};
    CHECK_OK(sse_http_stream_head(extra, 2, &text));
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n";
    CHECK(text != NULL && strncmp(text, head, sizeof head - 1) == 0, "stream head:\n%s",
          text ? text : "NULL");
    CHECK(text != NULL && strstr(text, "X-Room: news\r\n") != NULL &&
              strstr(text, "private") == NULL &&
              strcmp(text + strlen(text) - 4, "\r\n\r\n") == 0,
          "stream head: extra headers, the engine's own left out, a blank line:\n%s",
          text ? text : "NULL");
    sse_string_free(text);
    sse_header bad[] = {{"X-Bad", "a\r\nInjected: 1"}};
    text = NULL;
    CHECK_ERR(sse_http_stream_head(bad, 1, &text), SSE_ERR_INVALID_ARGUMENT);
    CHECK(text == NULL, "out_head written on failure");
    CHECK_ERR(sse_http_stream_head(NULL, 1, &text), SSE_ERR_NULL_POINTER);
    CHECK_ERR(sse_http_stream_head(NULL, 0, NULL), SSE_ERR_NULL_POINTER);

    CHECK_OK(sse_http_busy_answer(9, &text));
    CHECK(text != NULL && strncmp(text, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 9\r\n",
                                  50) == 0 &&
              strstr(text, "Connection: close\r\n") != NULL,
          "busy answer:\n%s", text ? text : "NULL");
    sse_string_free(text);
    CHECK_ERR(sse_http_busy_answer(9, NULL), SSE_ERR_NULL_POINTER);

    struct {
        const char *header, *query, *want;
    } ids[] = {
        {"  7-3 ", "lastEventId=9", "7-3"},     /* the header wins, trimmed */
        {"", "?a=1&lastEventId=9&lastEventId=10", "9"}, /* else the first parameter */
        {NULL, "lastEventId=%20a+b", "a b"},    /* form-decoded, then trimmed */
        {NULL, "lastEventId=", NULL},           /* empty: none */
        {NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char *id = (char *)"unset";
        CHECK_OK(sse_http_last_event_id(ids[i].header, ids[i].query, &id));
        if (ids[i].want == NULL)
            CHECK(id == NULL, "case %zu: id \"%s\", expected none", i, id ? id : "");
        else
            CHECK(id != NULL && strcmp(id, ids[i].want) == 0, "case %zu: id \"%s\"", i,
                  id ? id : "NULL");
        sse_string_free(id);
    }
    char *id = NULL;
    CHECK_ERR(sse_http_last_event_id("\xff", NULL, &id), SSE_ERR_INVALID_UTF8);
    CHECK_ERR(sse_http_last_event_id(NULL, NULL, NULL), SSE_ERR_NULL_POINTER);
}

int main(void) {
    test_take();
    test_bad_input();
    test_http_rules();
    return finish("test_stream");
}
