/*
 * The pipe's own speed: a C driver that pipelines walredo requests to a binary, the baseline
 * of pytest-walredo's client benchmarks (benchmarks/bench_client.py builds it with cc).
 *
 *   walredo-driver REQUEST_FILE DEPTH SECONDS -- BINARY [ARGS...]
 *
 * Starts BINARY ARGS with pipes on its stdin and stdout (stderr and the environment are
 * inherited), sends one request (REQUEST_FILE: the bytes of one request answered by exactly
 * one 8192-byte page, e.g. "H\0\0\0\4" or a .walredo file) and waits for its answer (start-up,
 * not timed), then keeps DEPTH requests in flight for SECONDS: whenever k answers have come
 * back, k more requests are written (like DEPTH callers, each sending its next request as soon
 * as it has its answer). Writes and reads are non-blocking under poll(), so requests larger
 * than the pipe cannot deadlock against a process blocked writing answers.
 *
 * Prints one line: "<answers> <elapsed ns> <first answer's FNV-1a hash>". Exit status 1 with
 * a line on stderr if the process ends early or a call fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLCKSZ 8192

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf || n == 0) {
        fprintf(stderr, "walredo-driver: %s is empty\n", path);
        exit(1);
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: walredo-driver REQUEST_FILE DEPTH SECONDS -- BINARY [ARGS...]\n");
        return 2;
    }
    size_t reqlen;
    unsigned char *req = read_file(argv[1], &reqlen);
    long depth = atol(argv[2]);
    double seconds = atof(argv[3]);
    if (depth < 1) {
        fprintf(stderr, "walredo-driver: DEPTH must be at least 1\n");
        return 2;
    }

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        die("pipe2");
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv(argv[5], argv + 5);
        perror(argv[5]);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    int wfd = in[1], rfd = out[0];
    fcntl(wfd, F_SETFL, O_NONBLOCK);
    fcntl(rfd, F_SETFL, O_NONBLOCK);

    /* Reads go into a ring of pages; only whole-answer counts matter. */
    size_t rcap = (size_t) BLCKSZ * 64;
    unsigned char *rbuf = malloc(rcap);
    uint64_t hash = 1469598103934665603ull;
    int hashed = 0;

    long to_write = 1;          /* requests not yet (fully) written */
    size_t woff = 0;            /* bytes of the current request written */
    long answers = 0;           /* answers read since the clock started */
    size_t partial = 0;         /* bytes of the current answer read */
    uint64_t start = 0, deadline = 0, end = 0;
    int warm = 1;

    for (;;) {
        if (to_write > 0) {
            ssize_t w = write(wfd, req + woff, reqlen - woff);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                die("write to the process's stdin");
            if (w > 0) {
                woff += (size_t) w;
                if (woff == reqlen) {
                    woff = 0;
                    to_write--;
                    continue; /* write the next one before waiting */
                }
            }
        }
        ssize_t r = read(rfd, rbuf, rcap);
        if (r == 0) {
            fprintf(stderr, "walredo-driver: the process closed its stdout\n");
            return 1;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                die("read from the process's stdout");
            struct pollfd p[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
            if (poll(p, to_write > 0 ? 2 : 1, -1) < 0 && errno != EINTR)
                die("poll");
            continue;
        }
        if (!hashed) {
            for (ssize_t i = 0; i < r && partial + (size_t) i < BLCKSZ; i++)
                hash = (hash ^ rbuf[i]) * 1099511628211ull;
        }
        partial += (size_t) r;
        long got = (long) (partial / BLCKSZ);
        partial %= BLCKSZ;
        if (got == 0)
            continue;
        hashed = 1;
        answers += got;
        if (warm) {
            /* The start-up answer: start the clock and fill the pipeline. */
            warm = 0;
            answers = 0;
            start = now_ns();
            deadline = start + (uint64_t) (seconds * 1e9);
            to_write = depth;
            continue;
        }
        if (now_ns() < deadline) {
            to_write += got;
        } else {
            end = now_ns(); /* the answers still in flight are drained below, not counted */
            break;
        }
    }
    printf("%ld %llu %016llx\n", answers, (unsigned long long) (end - start),
           (unsigned long long) hash);
    fflush(stdout);
    close(wfd);
    /* Drain until EOF so the process can exit cleanly, then reap it. */
    for (;;) {
        ssize_t r = read(rfd, rbuf, rcap);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                break;
            struct pollfd p = {rfd, POLLIN, 0};
            poll(&p, 1, 1000);
        }
    }
    int status;
    waitpid(pid, &status, 0);
    return 0;
}
