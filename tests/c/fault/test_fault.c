/*
 * Injected panics through the C API (a library built with the cargo feature
 * fault-injection; tests/c/run.sh builds it for this test only): a panic in a call
 * returns SSE_ERR_PANIC and the host goes on; a panic on a reactor thread makes the
 * engine fail closed: its client is reported SSE_REASON_ERROR, every later call returns
 * SSE_ERR_SHUT_DOWN saying why, sse_get_stats counts it, and freeing works.
 */
#include "../testutil.h"

/* Test-only export of the fault-injection build (not in sse_engine.h). */
sse_status sse_test_arm_fault(uint32_t point);
enum { NEXT_CALL = 1, NEXT_COMMAND = 2 };

static void test_panic_in_a_call(void) {
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    CHECK_ERR(sse_test_arm_fault(99), SSE_ERR_INVALID_ARGUMENT);
    CHECK_OK(sse_test_arm_fault(NEXT_CALL));
    sse_event ev = data_event("x");
    size_t n = 0;
    sse_status s = sse_broadcast(e, "news", &ev, &n);
    CHECK(s == SSE_ERR_PANIC, "broadcast with a panic returned %s", sse_status_str((int)s));
    CHECK(strstr(sse_last_error_message(), "panicked") != NULL, "message: %s",
          sse_last_error_message());
    /* The engine goes on. */
    CHECK_OK(sse_broadcast(e, "news", &ev, &n));
    CHECK_OK(sse_engine_shutdown(e, 1000));
    sse_engine_free(e);
}

static void test_a_dead_reactor_fails_closed(void) {
    lifecycle_log log;
    log_init(&log);
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    CHECK_OK(sse_set_event_callback(e, log_callback, &log));
    int client = -1, server = -1;
    REQUIRE(tcp_pair(&client, &server), "tcp pair");
    sse_connect_options o = {0};
    uint64_t id = 0;
    CHECK_OK(sse_connect_fd(e, server, &o, &id));
    CHECK(WAIT_UNTIL(log_count(&log, SSE_CONNECTED, id, -1) == 1, TIMEOUT_MS), "connected");

    CHECK_OK(sse_test_arm_fault(NEXT_COMMAND));
    sse_event ev = data_event("boom");
    CHECK_OK(sse_send_to_client(e, id, &ev)); /* queued; the reactor panics applying it */
    CHECK(WAIT_UNTIL(log_disconnect_reason(&log, id) == SSE_REASON_ERROR, TIMEOUT_MS),
          "the client was reported with reason %d, expected SSE_REASON_ERROR",
          log_disconnect_reason(&log, id));
    char *rest = NULL;
    size_t len = 0;
    CHECK(read_to_eof(client, &rest, &len, TIMEOUT_MS), "the client's stream ended");
    free(rest);
    size_t n = 0;
    CHECK_ERR(sse_broadcast(e, "news", &ev, &n), SSE_ERR_SHUT_DOWN);
    CHECK(strstr(sse_last_error_message(), "panicked") != NULL, "message: %s",
          sse_last_error_message());
    CHECK_ERR(sse_client_count(e, &n), SSE_ERR_SHUT_DOWN);
    sse_stats s;
    CHECK_OK(sse_get_stats(e, &s));
    CHECK(s.reactor_failures == 1, "reactor_failures %llu", (unsigned long long)s.reactor_failures);
    CHECK(s.disconnects_error == 1, "disconnects_error %llu", (unsigned long long)s.disconnects_error);
    char *metrics = NULL;
    CHECK_OK(sse_metrics(e, &metrics));
    CHECK(metrics != NULL && strstr(metrics, "sse_engine_reactor_failures_total 1") != NULL,
          "metrics show the failure");
    sse_string_free(metrics);
    sse_engine_free(e);
    close(client);
    log_destroy(&log);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_panic_in_a_call();
    test_a_dead_reactor_fails_closed();
    return finish("test_fault");
}
