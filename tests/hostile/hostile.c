/*
 * A hostile stand-in for a walredo binary, for the harness's own tests (tests/test_hostile.py).
 *
 * It speaks the walredo protocol with echo semantics (B names the block, P stores a page for
 * it, A is ignored, G answers the page stored for its block or zeros, H answers zeros) and
 * misbehaves as the MODE says. The mode is the name it is run under (argv[0]'s last part,
 * e.g. a copy named "setsid-crash"), so the plugin can run it with --walredo-bin and no extra
 * arguments. "Answers" below counts G and H answers, from 0.
 *
 *   correct        behave
 *   crash          answer 0 normally; at answer 1 print a FATAL line and die of SIGSEGV
 *   hang-read      answer 0 normally; then never answer, keep reading stdin
 *   hang-sleep     answer 0 normally; then sleep forever, reading nothing
 *   slow           sleep 200 ms before every answer
 *   stderr-lines   before every answer after the first, write 20 MB of stderr in 100-byte lines
 *   stderr-line    the same as one endless line (no newline ever)
 *   garbage        answer 0 normally; later G answers are 8192 pseudo-random bytes
 *   half-page      answer 0 normally; then write 4096 bytes of answer 1 and keep reading
 *   close-stdout   answer 0 normally; then close stdout and keep reading
 *   group-child    at start fork a child in our process group that ignores SIGTERM and
 *                  sleeps; behave
 *   setsid-child   at start fork a child that calls setsid and sleeps holding our pipes
 *   double-fork    at start fork a child that forks a grandchild (setsid, holding our pipes)
 *                  and exits at once; behave
 *   setsid-crash   at start fork a setsid child holding our pipes; answer 0 normally; at
 *                  answer 1 print a FATAL line and die of SIGSEGV
 *   setsid-exit    at start fork a setsid child holding our pipes; exit with status 3 right
 *                  after answer 0, reading nothing more
 *   exit0          exit with status 0 at once
 *   answer-cut     read B/G as fixed-size messages whatever their length field says (answers
 *                  a message cut short, which a real walredo must not)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLCKSZ 8192
#define TAGSZ 17

static char mode[64];
static unsigned char pages[64][TAGSZ + BLCKSZ];
static int npages;
static unsigned char cur_tag[TAGSZ];
static int answers;

static int is(const char *m) { return strcmp(mode, m) == 0; }

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(3);
        }
        p += w;
        n -= (size_t) w;
    }
}

/* 1 on success, 0 at EOF before any byte, exits on EOF inside */
static int read_exact(void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(0, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (got == 0)
                return 0;
            fprintf(stderr, "FATAL:  unexpected EOF\n");
            _exit(1);
        }
        got += (size_t) r;
    }
    return 1;
}

static void sleep_forever(void)
{
    for (;;)
        pause();
}

static void read_forever(void)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0)
            _exit(0);
    }
}

static void crash(int n)
{
    fprintf(stderr, "FATAL:  hostile crash at answer %d\n", n);
    raise(SIGSEGV);
    _exit(99);
}

static void flood_stderr(int lines)
{
    static char line[100];
    memset(line, 'e', sizeof line);
    if (lines)
        line[sizeof line - 1] = '\n';
    for (int i = 0; i < 20 * 1000 * 1000 / (int) sizeof line; i++)
        write_all(2, line, sizeof line);
}

static void answer(const unsigned char *page)
{
    static unsigned char garbage[BLCKSZ];
    int n = answers++;
    if (n >= 1) {
        if (is("crash") || is("setsid-crash"))
            crash(n);
        if (is("hang-read"))
            read_forever();
        if (is("hang-sleep"))
            sleep_forever();
        if (is("half-page")) {
            write_all(1, page, BLCKSZ / 2);
            read_forever();
        }
        if (is("close-stdout")) {
            close(1);
            read_forever();
        }
        if (is("stderr-lines"))
            flood_stderr(1);
        if (is("stderr-line"))
            flood_stderr(0);
        if (is("garbage")) {
            uint32_t x = 2463534242u + (uint32_t) n;
            for (int i = 0; i < BLCKSZ; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                garbage[i] = (unsigned char) x;
            }
            page = garbage;
        }
    }
    if (is("slow")) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    write_all(1, page, BLCKSZ);
    if (is("setsid-exit"))
        _exit(3);
}

static void fork_child(int new_session, int ignore_term, int double_fork)
{
    pid_t pid = fork();
    if (pid != 0)
        return;
    if (double_fork && fork() != 0)
        _exit(0);
    if (new_session)
        setsid();
    if (ignore_term)
        signal(SIGTERM, SIG_IGN);
    sleep_forever();
}

int main(int argc, char **argv)
{
    static unsigned char zeros[BLCKSZ];
    static unsigned char payload[TAGSZ + BLCKSZ + (1 << 20)];
    const char *slash = strrchr(argv[0], '/');
    snprintf(mode, sizeof mode, "%s", slash ? slash + 1 : argv[0]);
    (void) argc;

    if (is("exit0"))
        return 0;
    if (is("group-child"))
        fork_child(0, 1, 0);
    if (is("setsid-child") || is("setsid-crash") || is("setsid-exit"))
        fork_child(1, 0, 0);
    if (is("double-fork"))
        fork_child(1, 0, 1);

    for (;;) {
        unsigned char hdr[5];
        if (!read_exact(hdr, 5)) {
            fprintf(stderr, "LOG:  received EOF on stdin, shutting down\n");
            return 0;
        }
        uint32_t len = (uint32_t) hdr[1] << 24 | (uint32_t) hdr[2] << 16 | (uint32_t) hdr[3] << 8 | hdr[4];
        if (len < 4 || len - 4 > sizeof payload) {
            fprintf(stderr, "FATAL:  invalid message length\n");
            return 1;
        }
        size_t n = len - 4;
        if (is("answer-cut") && (hdr[0] == 'B' || hdr[0] == 'G'))
            n = TAGSZ;
        if (!read_exact(payload, n)) {
            fprintf(stderr, "FATAL:  unexpected EOF\n");
            return 1;
        }
        switch (hdr[0]) {
        case 'B':
            memcpy(cur_tag, payload, TAGSZ);
            break;
        case 'P':
            if (npages < 64 && n == TAGSZ + BLCKSZ)
                memcpy(pages[npages++], payload, TAGSZ + BLCKSZ);
            break;
        case 'A':
            break;
        case 'G': {
            const unsigned char *found = zeros;
            for (int i = npages - 1; i >= 0; i--)
                if (memcmp(pages[i], payload, TAGSZ) == 0) {
                    found = pages[i] + TAGSZ;
                    break;
                }
            answer(found);
            npages = 0;
            break;
        }
        case 'H':
            answer(zeros);
            break;
        default:
            fprintf(stderr, "FATAL:  invalid frontend message type %d\n", (signed char) hdr[0]);
            return 1;
        }
    }
}
