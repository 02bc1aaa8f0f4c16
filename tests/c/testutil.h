/*
 * Shared helpers of the C tests: CHECK macros that count failures, loopback sockets,
 * a lifecycle-event log filled from the reactor thread, timed waits, a byte buffer with
 * a byte-for-byte comparison, curl in a child process, and the request parsing of the
 * tests' small HTTP server.
 *
 * Include it first in a test (it defines _GNU_SOURCE before any system header).
 * Everything here is static: each test is one translation unit.
 */
#ifndef SSE_TESTUTIL_H
#define SSE_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sse_engine.h"

/* How long any wait of the tests may take before it counts as a failure. */
#define TIMEOUT_MS 10000

/* ------------------------------------------------------------------------------------ */
/* Checks                                                                                */
/* ------------------------------------------------------------------------------------ */

static int g_checks;
static int g_failures;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        g_checks++;                                                                       \
        if (!(cond)) {                                                                    \
            g_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* Something the test itself needs failed (socket(), fork()...): report and count it. */
#define REQUIRE(cond, ...)                                                                \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            CHECK(cond, __VA_ARGS__);                                                     \
            return;                                                                       \
        }                                                                                 \
    } while (0)

/*
 * sse_last_error_message() is not cleared by a successful call, so a non-empty message
 * after an error could be left over from an earlier one. Before every call that must
 * fail, arm_last_error() provokes a marker error with a message no test expects; the
 * check then requires a non-empty message that differs from the marker.
 */
static char g_marker[512];

static inline void arm_last_error(void) {
    sse_config c;
    sse_config_init(&c);
    c.threads = 1000; /* the tests use 0 and 65 for their own threads checks */
    sse_engine *e = NULL;
    sse_status s = sse_engine_new(&c, &e);
    snprintf(g_marker, sizeof g_marker, "%s", sse_last_error_message());
    if (s != SSE_ERR_OUT_OF_RANGE || e != NULL || g_marker[0] == '\0') {
        g_failures++;
        fprintf(stderr, "arm_last_error: the marker error did not happen (status %d)\n", s);
    }
}

static inline void check_status_at(const char *file, int line, const char *expr, sse_status got,
                            sse_status expected) {
    /* Copy the message before any other library call (it is valid until the next one). */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sse_last_error_message());
    g_checks++;
    if (got != expected) {
        g_failures++;
        fprintf(stderr, "%s:%d: %s\n    expected %s (%d), got %s (%d); last error: \"%s\"\n",
                file, line, expr, sse_status_str((int)expected), (int)expected,
                sse_status_str((int)got), (int)got, msg);
        return;
    }
    if (expected != SSE_OK) {
        if (msg[0] == '\0' || strcmp(msg, g_marker) == 0) {
            g_failures++;
            fprintf(stderr, "%s:%d: %s\n    returned %s but sse_last_error_message() is %s\n",
                    file, line, expr, sse_status_str((int)got),
                    msg[0] == '\0' ? "empty" : "stale (the marker)");
        }
        /* The message says what was wrong; sse_status_str names the status. */
        const char *name = sse_status_str((int)got);
        if (strncmp(msg, name, strlen(name)) == 0) {
            g_failures++;
            fprintf(stderr, "%s:%d: %s\n    the message repeats the status name: \"%s\"\n",
                    file, line, expr, msg);
        }
    }
}

/* CHECK_OK(call): the call must return SSE_OK. */
#define CHECK_OK(call) check_status_at(__FILE__, __LINE__, #call, (call), SSE_OK)

/* CHECK_ERR(call, status): the call must return `status` and leave a fresh message. */
#define CHECK_ERR(call, expected)                                                         \
    do {                                                                                  \
        arm_last_error();                                                                 \
        sse_status check_err_got_ = (call);                                               \
        check_status_at(__FILE__, __LINE__, #call, check_err_got_, (expected));           \
    } while (0)

static inline int finish(const char *name) {
    if (g_failures == 0) {
        printf("%s: ok (%d checks)\n", name, g_checks);
        return 0;
    }
    printf("%s: FAILED (%d of %d checks failed)\n", name, g_failures, g_checks);
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* Time                                                                                  */
/* ------------------------------------------------------------------------------------ */

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls `cond` (an expression) every few ms until it holds or `timeout_ms` passes.
 * Evaluates to whether it held. Only a wait: the assertion is the caller's CHECK. */
#define WAIT_UNTIL(cond, timeout_ms)                                                      \
    __extension__({                                                                       \
        int64_t wait_deadline_ = now_ms() + (timeout_ms);                                 \
        bool wait_ok_ = false;                                                            \
        for (;;) {                                                                        \
            if (cond) {                                                                   \
                wait_ok_ = true;                                                          \
                break;                                                                    \
            }                                                                             \
            if (now_ms() >= wait_deadline_)                                               \
                break;                                                                    \
            sleep_ms(2);                                                                  \
        }                                                                                 \
        wait_ok_;                                                                         \
    })

/* ------------------------------------------------------------------------------------ */
/* Lifecycle log: the callback runs on a reactor thread; everything is under a mutex.    */
/* ------------------------------------------------------------------------------------ */

#define LOG_CAP 1024

typedef struct lifecycle_log {
    pthread_mutex_t mu;
    size_t n;       /* events recorded (at most LOG_CAP kept) */
    size_t dropped; /* events beyond LOG_CAP */
    sse_lifecycle_event ev[LOG_CAP];
} lifecycle_log;

static inline void log_init(lifecycle_log *log) {
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->mu, NULL);
}

static inline void log_destroy(lifecycle_log *log) { pthread_mutex_destroy(&log->mu); }

static inline void log_callback(const sse_lifecycle_event *event, void *user_data) {
    lifecycle_log *log = user_data;
    pthread_mutex_lock(&log->mu);
    if (log->n < LOG_CAP)
        log->ev[log->n++] = *event;
    else
        log->dropped++;
    pthread_mutex_unlock(&log->mu);
}

/* How many recorded events match (client 0 = any client, reason -1 = any reason). */
static inline size_t log_count(lifecycle_log *log, sse_lifecycle_kind kind, uint64_t client,
                        int reason) {
    size_t count = 0;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->n; i++) {
        const sse_lifecycle_event *e = &log->ev[i];
        if (e->kind == kind && (client == 0 || e->client == client) &&
            (reason < 0 || (int)e->reason == reason))
            count++;
    }
    pthread_mutex_unlock(&log->mu);
    return count;
}

/* The reason of the first DISCONNECTED event of `client`, or -1. */
static inline int log_disconnect_reason(lifecycle_log *log, uint64_t client) {
    int reason = -1;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->n; i++) {
        if (log->ev[i].kind == SSE_DISCONNECTED && log->ev[i].client == client) {
            reason = (int)log->ev[i].reason;
            break;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return reason;
}

/* ------------------------------------------------------------------------------------ */
/* Sockets                                                                               */
/* ------------------------------------------------------------------------------------ */

/* A listening TCP socket on 127.0.0.1 with an ephemeral port. Returns the fd or -1. */
static inline int listen_loopback(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* accept4(SOCK_CLOEXEC) with a timeout. Returns the connected fd or -1. */
static inline int accept_timeout(int listen_fd, int timeout_ms) {
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left < 0)
            left = 0;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0 || (errno != EINTR && errno != EAGAIN))
            return fd;
    }
}

/* A TCP client socket connected to 127.0.0.1:port (blocking). Returns the fd or -1. */
static inline int connect_loopback(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One loopback TCP connection: *client is our client end, *server the accepted end
 * (what a host would hand over). */
static inline bool tcp_pair(int *client, int *server) {
    uint16_t port = 0;
    int lfd = listen_loopback(&port);
    if (lfd < 0)
        return false;
    *client = connect_loopback(port);
    *server = *client >= 0 ? accept_timeout(lfd, TIMEOUT_MS) : -1;
    close(lfd);
    if (*server < 0) {
        if (*client >= 0)
            close(*client);
        return false;
    }
    return true;
}

static inline bool send_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Reads an HTTP request head (up to and including the blank line) into buf, NUL-
 * terminated. It peeks first and then consumes exactly the head, so bytes the client
 * sent after it stay in the socket. Returns the head length, or -1 on error, timeout,
 * or a head that does not fit.
 */
static inline ssize_t read_request_head(int fd, char *buf, size_t cap, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left < 0)
            return -1;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = recv(fd, buf, cap - 1, MSG_PEEK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf[n] = '\0';
        char *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t head = (size_t)(end - buf) + 4;
            size_t got = 0;
            while (got < head) {
                ssize_t m = recv(fd, buf + got, head - got, 0);
                if (m < 0 && errno == EINTR)
                    continue;
                if (m <= 0)
                    return -1;
                got += (size_t)m;
            }
            buf[head] = '\0';
            return (ssize_t)head;
        }
        if ((size_t)n >= cap - 1)
            return -1;
        /* Incomplete head: wait for more bytes (MSG_PEEK does not consume). */
        sleep_ms(1);
    }
}

/* Reads until EOF (or error) or until `timeout_ms` passes; appends to *buf (realloc'd).
 * Returns true on EOF. */
static inline bool read_to_eof(int fd, char **buf, size_t *len, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    size_t cap = *len + 4096;
    char *b = realloc(*buf, cap);
    if (b == NULL)
        return false;
    *buf = b;
    for (;;) {
        int left = (int)(deadline - now_ms());
        if (left < 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        if (cap - *len < 4096) {
            cap *= 2;
            b = realloc(*buf, cap);
            if (b == NULL)
                return false;
            *buf = b;
        }
        ssize_t n = read(fd, *buf + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET;
        if (n == 0)
            return true;
        *len += (size_t)n;
    }
}

/* Whether fd is an open descriptor. */
static inline bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* ------------------------------------------------------------------------------------ */
/* A growable byte buffer (the expected stream may contain NUL bytes).                   */
/* ------------------------------------------------------------------------------------ */

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static inline void buf_add(buf *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static inline void buf_printf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void buf_printf(buf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "buf_printf: output too long\n");
        exit(2);
    }
    buf_add(b, tmp, (size_t)n);
}

static inline void buf_free(buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Prints both streams with escapes and the first differing offset. */
static inline void show_diff(const char *what, const char *got, size_t got_len,
                             const char *want, size_t want_len) {
    size_t i = 0;
    while (i < got_len && i < want_len && got[i] == want[i])
        i++;
    fprintf(stderr, "%s differs at byte %zu (got %zu bytes, expected %zu)\n", what, i,
            got_len, want_len);
    const char *names[2] = {"got", "expected"};
    const char *bufs[2] = {got, want};
    size_t lens[2] = {got_len, want_len};
    for (int k = 0; k < 2; k++) {
        fprintf(stderr, "  %-8s: \"", names[k]);
        for (size_t j = 0; j < lens[k]; j++) {
            unsigned char c = (unsigned char)bufs[k][j];
            if (c == '\n')
                fputs("\\n", stderr);
            else if (c == '\r')
                fputs("\\r", stderr);
            else if (c == '\\')
                fputs("\\\\", stderr);
            else if (c < 0x20 || c >= 0x7f)
                fprintf(stderr, "\\x%02x", c);
            else
                fputc(c, stderr);
        }
        fputs("\"\n", stderr);
    }
}

/* The id of a gap event is the engine's position when the client connected (its epoch
 * is random per engine): a copy of `got` with every "id: X\nevent: sse-gap\n" written
 * as "id: *\nevent: sse-gap\n", which is how the tests expect it. Free the result. */
static inline char *mask_gap_ids(const char *got, size_t got_len, size_t *out_len) {
    static const char gap[] = "\nevent: sse-gap\n";
    char *copy = malloc(got_len + 1);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    size_t n = 0;
    for (size_t i = 0; i < got_len;) {
        bool line_start = i == 0 || got[i - 1] == '\n';
        if (line_start && got_len - i > 4 && memcmp(got + i, "id: ", 4) == 0) {
            const char *eol = memchr(got + i, '\n', got_len - i);
            size_t rest = eol ? (size_t)(got + got_len - eol) : 0;
            if (eol && rest >= sizeof gap - 1 && memcmp(eol, gap, sizeof gap - 1) == 0) {
                memcpy(copy + n, "id: *", 5);
                n += 5;
                i = (size_t)(eol - got);
                continue;
            }
        }
        copy[n++] = got[i++];
    }
    copy[n] = '\0';
    *out_len = n;
    return copy;
}

#define CHECK_BYTES(what, got, got_len, want, want_len)                                   \
    do {                                                                                  \
        size_t masked_len_;                                                               \
        char *masked_ = mask_gap_ids((got), (got_len), &masked_len_);                     \
        bool same_ = masked_len_ == (want_len) && memcmp(masked_, (want), (want_len)) == 0; \
        CHECK(same_, "%s is not the expected byte stream", (what));                       \
        if (!same_)                                                                       \
            show_diff((what), masked_, masked_len_, (want), (want_len));                  \
        free(masked_);                                                                    \
    } while (0)

/* ------------------------------------------------------------------------------------ */
/* curl in a child process                                                               */
/* ------------------------------------------------------------------------------------ */

typedef struct child {
    pid_t pid;
    int out; /* read end of curl's stdout */
} child;

/* Starts `curl -sS -N -i --max-time 10 [extra...] url`; stdout goes to a pipe. */
static inline bool spawn_curl(child *c, const char *url, const char *extra1, const char *extra2) {
    const char *argv[16];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = "-N";
    argv[n++] = "-i";
    argv[n++] = "--max-time";
    argv[n++] = "10";
    if (extra1 != NULL)
        argv[n++] = extra1;
    if (extra2 != NULL)
        argv[n++] = extra2;
    argv[n++] = url;
    argv[n] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        execvp("curl", (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    c->pid = pid;
    c->out = p[0];
    return true;
}

/* Waits for the child to exit (killing it after timeout_ms); returns its exit status or
 * -1 if it did not exit normally. */
static inline int wait_child(pid_t pid, int timeout_ms) {
    int status = 0;
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(5);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads all of curl's output, waits for it; returns its exit status (-1 on trouble). */
static inline int finish_curl(child *c, buf *out) {
    char *data = NULL;
    size_t len = 0;
    bool eof = read_to_eof(c->out, &data, &len, TIMEOUT_MS + 2000);
    close(c->out);
    int status = wait_child(c->pid, 2000);
    if (data != NULL)
        buf_add(out, data, len);
    free(data);
    if (!eof)
        fprintf(stderr, "curl output did not end in time\n");
    return eof ? status : -1;
}

/* ------------------------------------------------------------------------------------ */
/* The HTTP side: request parsing                                                        */
/* ------------------------------------------------------------------------------------ */

#define MAX_CHANNELS 8

typedef struct request {
    char method[16];
    char path[256];
    char channels[MAX_CHANNELS][64];
    const char *channel_ptrs[MAX_CHANNELS];
    size_t channels_len;
    char user[64];
    bool has_user;
    char last_event_id[320];
    bool has_last_event_id;
} request;

/* Copies at most cap-1 bytes of [s, s+n) into dst. */
static inline void copy_n(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Parses "GET /path?query HTTP/1.1\r\n" and the headers of a NUL-terminated head. */
static inline bool parse_request(const char *head, request *r) {
    memset(r, 0, sizeof *r);
    const char *line_end = strstr(head, "\r\n");
    const char *sp1 = strchr(head, ' ');
    if (line_end == NULL || sp1 == NULL || sp1 > line_end)
        return false;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
    if (sp2 == NULL)
        return false;
    copy_n(r->method, sizeof r->method, head, (size_t)(sp1 - head));
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    const char *path_end = q ? q : sp2;
    copy_n(r->path, sizeof r->path, target, (size_t)(path_end - target));
    if (q != NULL) {
        const char *p = q + 1;
        while (p < sp2) {
            const char *amp = memchr(p, '&', (size_t)(sp2 - p));
            const char *end = amp ? amp : sp2;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (eq != NULL) {
                size_t klen = (size_t)(eq - p);
                const char *v = eq + 1;
                size_t vlen = (size_t)(end - v);
                if (klen == 7 && memcmp(p, "channel", 7) == 0 &&
                    r->channels_len < MAX_CHANNELS) {
                    copy_n(r->channels[r->channels_len], sizeof r->channels[0], v, vlen);
                    r->channel_ptrs[r->channels_len] = r->channels[r->channels_len];
                    r->channels_len++;
                } else if (klen == 4 && memcmp(p, "user", 4) == 0) {
                    copy_n(r->user, sizeof r->user, v, vlen);
                    r->has_user = true;
                }
            }
            p = end + 1;
        }
    }
    /* Header lines: "Name: value\r\n" until the blank line. */
    const char *p = line_end + 2;
    while (strncmp(p, "\r\n", 2) != 0) {
        const char *end = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (end == NULL)
            return false;
        if (colon != NULL && (size_t)(colon - p) == strlen("Last-Event-ID") &&
            strncasecmp(p, "Last-Event-ID", (size_t)(colon - p)) == 0) {
            const char *v = colon + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            copy_n(r->last_event_id, sizeof r->last_event_id, v, (size_t)(end - v));
            r->has_last_event_id = true;
        }
        p = end + 2;
    }
    return true;
}

/* Accepts one connection and reads its request head. Returns the fd (or -1). */
static inline int accept_request(int listen_fd, request *r) {
    int fd = accept_timeout(listen_fd, TIMEOUT_MS);
    if (fd < 0)
        return -1;
    char head[4096];
    if (read_request_head(fd, head, sizeof head, TIMEOUT_MS) < 0 || !parse_request(head, r)) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline sse_event data_event(const char *data) {
    sse_event ev = {0};
    ev.data = data;
    ev.data_len = strlen(data);
    return ev;
}

#endif /* SSE_TESTUTIL_H */
