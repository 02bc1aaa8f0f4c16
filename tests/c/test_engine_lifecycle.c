/*
 * The engine's own lifecycle through the C API: a start that fails part-way leaves no
 * thread and no descriptor behind; a callback replaced from inside itself is not called
 * again, so its user_data may be freed there (AddressSanitizer catches a use after free).
 */
#include "testutil.h"

#include <dirent.h>
#include <sys/resource.h>

/* Entries of a /proc directory, not counting the one opendir itself holds. */
static int count_entries(const char *path) {
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.')
            n++;
    }
    closedir(dir);
    return strcmp(path, "/proc/self/fd") == 0 ? n - 1 : n;
}

static void test_failed_start_leaves_nothing(void) {
    struct rlimit saved;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0, "getrlimit");
    /* Leave exactly 5 descriptors free: each reactor needs two (poller and waker), so
     * the third of four fails. */
    int highest = 0;
    for (int fd = 0; fd < 4096; fd++) {
        if (fd_is_open(fd))
            highest = fd;
    }
    struct rlimit low = saved;
    low.rlim_cur = (rlim_t)highest + 64;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
    static int fillers[4096 + 64];
    int filled = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        REQUIRE(filled < (int)(sizeof fillers / sizeof fillers[0]), "too many free descriptors");
        fillers[filled++] = fd;
    }
    REQUIRE(filled >= 5, "only %d descriptors were free", filled);
    for (int i = 0; i < 5; i++)
        close(fillers[--filled]);

    int fds_before = count_entries("/proc/self/fd");
    int threads_before = count_entries("/proc/self/task");
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.threads = 4;
    sse_engine *e = NULL;
    CHECK_ERR(sse_engine_new(&cfg, &e), SSE_ERR_IO);
    CHECK(e == NULL, "no engine on error");
    CHECK(count_entries("/proc/self/fd") == fds_before, "descriptors left behind: %d before, %d after",
          fds_before, count_entries("/proc/self/fd"));
    /* A joined thread may stay listed in /proc for a moment after it ended. */
    CHECK(WAIT_UNTIL(count_entries("/proc/self/task") == threads_before, TIMEOUT_MS),
          "threads left behind: %d before, %d after", threads_before,
          count_entries("/proc/self/task"));

    /* The same five descriptors are free again: two reactors start and stop cleanly. */
    cfg.threads = 2;
    CHECK_OK(sse_engine_new(&cfg, &e));
    CHECK(e != NULL, "engine with the descriptors given back");
    sse_engine_free(e);
    CHECK(count_entries("/proc/self/fd") == fds_before, "descriptors after free");

    while (filled > 0)
        close(fillers[--filled]);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0, "restore the limit");
}

/* The first callback's state: freed by the callback itself once it replaced itself. */
typedef struct first_state {
    sse_engine *engine;
    lifecycle_log *next_log;
    int calls;
} first_state;

static void first_callback(const sse_lifecycle_event *event, void *user_data) {
    first_state *state = user_data;
    state->calls++; /* a use after free here is what ASan reports on a broken engine */
    if (event->kind != SSE_CONNECTED)
        return;
    /* Let the other hand-overs queue up behind this event on the reactor. */
    sleep_ms(200);
    sse_engine *engine = state->engine;
    lifecycle_log *next_log = state->next_log;
    CHECK_OK(sse_set_event_callback(engine, log_callback, next_log));
    free(state);
}

static void test_callback_replaced_from_inside_itself(void) {
    uint16_t port;
    int lfd = listen_loopback(&port);
    REQUIRE(lfd >= 0, "listen");
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    lifecycle_log next;
    log_init(&next);
    first_state *state = calloc(1, sizeof *state);
    REQUIRE(state != NULL, "calloc");
    state->engine = e;
    state->next_log = &next;
    CHECK_OK(sse_set_event_callback(e, first_callback, state));

    enum { CLIENTS = 5 };
    int peers[CLIENTS];
    uint64_t ids[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        peers[i] = connect_loopback(port);
        int fd = accept_timeout(lfd, TIMEOUT_MS);
        REQUIRE(peers[i] >= 0 && fd >= 0, "connection %d", i);
        sse_connect_options o = {0};
        CHECK_OK(sse_connect_fd(e, fd, &o, &ids[i]));
    }
    /* Every event after the first went to the new callback. */
    CHECK(WAIT_UNTIL(log_count(&next, SSE_CONNECTED, 0, -1) == CLIENTS - 1, TIMEOUT_MS),
          "the new callback saw %zu of %d connects", log_count(&next, SSE_CONNECTED, 0, -1),
          CLIENTS - 1);
    CHECK_OK(sse_disconnect(e, ids[0]));
    CHECK(WAIT_UNTIL(log_count(&next, SSE_DISCONNECTED, ids[0], -1) == 1, TIMEOUT_MS),
          "the new callback saw the disconnect");
    sse_engine_free(e);
    for (int i = 0; i < CLIENTS; i++)
        close(peers[i]);
    close(lfd);
    log_destroy(&next);
}

/* sse_engine_begin_shutdown returns at once; sse_engine_wait_shutdown waits for the
 * reactors (a client that reads nothing keeps the flush going until the deadline);
 * sse_is_connected answers from the engine's directory. */
static void test_begin_and_wait_shutdown(void) {
    lifecycle_log log;
    log_init(&log);
    sse_config cfg;
    CHECK_OK(sse_config_init(&cfg));
    cfg.heartbeat_ms = 0;
    sse_engine *e = NULL;
    CHECK_OK(sse_engine_new(&cfg, &e));
    REQUIRE(e != NULL, "engine");
    CHECK_OK(sse_set_event_callback(e, log_callback, &log));
    bool stopped = true;
    CHECK_ERR(sse_engine_wait_shutdown(e, 0, &stopped), SSE_ERR_INVALID_ARGUMENT);

    int client = -1, server = -1;
    REQUIRE(tcp_pair(&client, &server), "tcp pair");
    int small = 4096;
    setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(server, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    uint64_t id = 0;
    CHECK_OK(sse_connect_fd(e, server, NULL, &id));
    bool connected = false;
    CHECK_OK(sse_is_connected(e, id, &connected));
    CHECK(connected, "the new client is not connected");
    CHECK_OK(sse_is_connected(e, id + 1000, &connected));
    CHECK(!connected, "an unknown client is connected");
    CHECK_ERR(sse_is_connected(e, id, NULL), SSE_ERR_NULL_POINTER);
    /* Queue more than the kernel buffers take, so the flush lasts until the deadline. */
    static char big[64 * 1024];
    memset(big, 'x', sizeof big - 1);
    sse_event ev = data_event(big);
    for (int i = 0; i < 8; i++)
        CHECK_OK(sse_send_to_client(e, id, &ev));

    int64_t began = now_ms();
    CHECK_OK(sse_engine_begin_shutdown(e, 500, NULL));
    CHECK(now_ms() - began < 250, "begin_shutdown waited %lld ms", (long long)(now_ms() - began));
    size_t count = 0;
    CHECK_ERR(sse_broadcast_all(e, &ev, &count), SSE_ERR_SHUT_DOWN);
    CHECK_ERR(sse_engine_begin_shutdown(e, 0, NULL), SSE_ERR_SHUT_DOWN);
    CHECK_OK(sse_engine_wait_shutdown(e, 20, &stopped));
    CHECK(!stopped, "stopped while the flush still ran");
    CHECK_OK(sse_engine_wait_shutdown(e, -1, &stopped));
    CHECK(stopped, "wait_shutdown(-1) returned before the reactors stopped");
    CHECK(now_ms() - began >= 500, "the flush deadline was cut short");
    CHECK(log_disconnect_reason(&log, id) == SSE_REASON_SHUTDOWN,
          "the client's last event was not delivered before the wait returned");
    CHECK_OK(sse_engine_wait_shutdown(e, 0, &stopped));
    CHECK(stopped, "a second wait");
    sse_engine_free(e);
    close(client);
    log_destroy(&log);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    test_failed_start_leaves_nothing();
    test_callback_replaced_from_inside_itself();
    test_begin_and_wait_shutdown();
    return finish("test_engine_lifecycle");
}
