/* Test workload for tests/deploy/podman.sh: reports the sandbox it runs in, reports metered
 * usage if asked to, then waits for SIGTERM and exits 42, so the test can see that `podman stop`
 * reached it through entitle.
 *
 * Usage reports (before `server: ready`, so ready means every report was answered):
 *   WORKLOAD_USAGE="scans=3,gb=2"   POST /v1/usage to $ENTITLE_METER_URL (http://IPv4:PORT or
 *                                   unix:/PATH) over a plain socket, as a product without an
 *                                   HTTP library would; refused connections and 503 are retried
 *                                   for up to 10 s (the relay may still be starting).
 *   WORKLOAD_USAGE_CLI="gb=2"       run `$WORKLOAD_ENTITLE usage gb 2` (entitle's own client). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; }

/* One report; the HTTP status, -1 when the relay cannot be reached, -2 for a bad URL. */
static int post_usage(const char *url, const char *dim, long qty) {
    int fd = -1;
    if (!strncmp(url, "unix:", 5)) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", url + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) goto unreachable;
    } else {
        char host[64];
        int port;
        struct sockaddr_in sin = {.sin_family = AF_INET};
        if (sscanf(url, "http://%63[0-9.]:%d", host, &port) != 2 || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
            return -2;
        sin.sin_port = htons((unsigned short)port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) goto unreachable;
    }
    char body[320], req[640], resp[512];
    int blen = snprintf(body, sizeof body, "{\"dimension\":\"%s\",\"quantity\":%ld}", dim, qty);
    int rlen = snprintf(req, sizeof req,
                        "POST /v1/usage HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                        blen, body);
    for (int off = 0; off < rlen;) {
        ssize_t n = write(fd, req + off, (size_t)(rlen - off));
        if (n <= 0) goto unreachable;
        off += (int)n;
    }
    size_t got = 0;
    ssize_t n;
    while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)n;
    resp[got] = 0;
    close(fd);
    int status = -1;
    return sscanf(resp, "HTTP/1.%*d %d", &status) == 1 ? status : -1;
unreachable:
    if (fd >= 0) close(fd);
    return -1;
}

/* "scans=3,gb=2": calls report(dim, qty) for each pair. */
static void each_usage(const char *list, void (*report)(const char *, long)) {
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) continue;
        *eq = 0;
        report(item, strtol(eq + 1, NULL, 10));
    }
}

static void report_http(const char *dim, long qty) {
    const char *url = getenv("ENTITLE_METER_URL");
    if (!url || !*url) {
        printf("server: usage %s %ld: no ENTITLE_METER_URL\n", dim, qty);
        return;
    }
    struct timespec start, now, pause = {0, 100 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status;
    for (;;) {
        status = post_usage(url, dim, qty);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((status != -1 && status != 503) || now.tv_sec - start.tv_sec >= 10) break;
        nanosleep(&pause, NULL);
    }
    printf("server: usage %s %ld to %s: HTTP %d\n", dim, qty, url, status);
}

static void report_cli(const char *dim, long qty) {
    const char *entitle = getenv("WORKLOAD_ENTITLE");
    char quantity[32];
    snprintf(quantity, sizeof quantity, "%ld", qty);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(entitle ? entitle : "/.entitle/entitle", "entitle", "usage", dim, quantity, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("server: entitle usage %s %ld: exit %d\n", dim, qty, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("server: uid=%d gid=%d pid=%d ppid=%d\n", (int)getuid(), (int)getgid(), (int)getpid(),
           (int)getppid());
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    while (status && fgets(line, sizeof line, status)) {
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapBnd:", 7) ||
            !strncmp(line, "NoNewPrivs:", 11))
            printf("server: %s", line);
    }
    if (status) fclose(status);
    int fd = open("/probe-write", O_CREAT | O_WRONLY, 0644);
    printf("server: write to / %s\n", fd < 0 ? strerror(errno) : "succeeded");
    const char *token = getenv("ENTITLE_TOKEN");
    printf("server: ENTITLE_TOKEN %s\n", token && *token ? "present" : "missing");
    const char *record = getenv("ENTITLE_RECORD");
    if (record && *record) {
        FILE *r = fopen(record, "r");
        long size = -1;
        if (r && fseek(r, 0, SEEK_END) == 0) size = ftell(r);
        printf("server: ENTITLE_RECORD %s: %s%ld bytes\n", record, r ? "" : "unreadable, ", size);
        if (r) fclose(r);
        int wfd = open(record, O_WRONLY | O_APPEND);
        printf("server: record writable: %s\n", wfd < 0 ? strerror(errno) : "yes");
    }

    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    const char *usage = getenv("WORKLOAD_USAGE");
    if (usage && *usage) each_usage(usage, report_http);
    usage = getenv("WORKLOAD_USAGE_CLI");
    if (usage && *usage) each_usage(usage, report_cli);
    printf("server: ready\n");
    sigdelset(&old, SIGTERM);
    sigsuspend(&old); /* returns after the SIGTERM handler ran */
    printf("server: got SIGTERM\n");
    return 42;
}
