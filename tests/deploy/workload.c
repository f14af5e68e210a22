/* Test workload for tests/deploy/podman.sh: reports the sandbox it runs in, then waits for
 * SIGTERM and exits 42, so the test can see that `podman stop` reached it through entitle. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; }

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
    printf("server: ready\n");
    sigdelset(&old, SIGTERM);
    sigsuspend(&old); /* returns after the SIGTERM handler ran */
    printf("server: got SIGTERM\n");
    return 42;
}
