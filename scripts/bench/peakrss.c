/* peakrss CMD ARGS...: run CMD and print its peak RSS in KiB (ru_maxrss) on stderr's last line.
 * A tiny static launcher, because Linux counts the pre-exec image of the forking process in
 * ru_maxrss: measured from Python, even `true` would show Python's ~13 MiB. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 64;
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) return 70;
    fprintf(stderr, "peakrss %ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
