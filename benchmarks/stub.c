/*
 * A do-nothing walredo stand-in for benchmarks: the cost floor of the pipe protocol.
 *
 * Reads the walredo message stream on stdin (tag u8, big-endian length u32 counting itself,
 * payload), skips every payload, and answers each 'H' and 'G' with 8192 zero bytes. Like the
 * reference server it batches: the answers of all complete messages in one read leave in one
 * write before the next blocking read. Ignores its other arguments (--wal-redo and friends).
 * EOF: exit 0; a malformed header: exit 1. Written for pytest-walredo's benchmarks.
 *
 * With --echo it answers 'G' with the page of the last 'P' since the last 'B' (zeros if none)
 * instead: right for every property that only compares a process with itself or with the
 * pushed page (pings, pushed images, determinism, split invariance, concurrent callers), which
 * lets benchmarks/bench_conformance.py time the suite without a walredo's redo cost.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define BLCKSZ 8192
#define INBUF (1 << 20)
#define MAXOUT 256              /* answers per batch before an early flush */

static unsigned char in[INBUF];

static int write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Write `count` zero pages with as few syscalls as a fixed buffer allows. */
static int answer(size_t count)
{
    static unsigned char out[MAXOUT * BLCKSZ];   /* zero-initialised, never written */
    while (count > 0) {
        size_t now = count < MAXOUT ? count : MAXOUT;
        if (write_all(out, now * BLCKSZ) < 0)
            return -1;
        count -= now;
    }
    return 0;
}

/* --echo: whole messages only (one must fit in `in`), the page of the last P kept. */
static int echo_loop(void)
{
    static unsigned char page[BLCKSZ], out[MAXOUT * BLCKSZ];
    int have_page = 0;
    size_t have = 0;
    for (;;) {
        ssize_t r = read(0, in + have, INBUF - have);
        if (r < 0)
            return 1;
        if (r == 0)
            return have == 0 ? 0 : 1;
        have += (size_t) r;
        size_t pos = 0, answers = 0;
        while (have - pos >= 5) {
            unsigned char tag = in[pos];
            uint32_t len = ((uint32_t) in[pos + 1] << 24) | ((uint32_t) in[pos + 2] << 16) |
                           ((uint32_t) in[pos + 3] << 8) | (uint32_t) in[pos + 4];
            if (len < 4 || len - 4 > INBUF - 5)
                return 1;
            if (have - pos - 5 < len - 4)
                break; /* the rest of this message is still to come */
            const unsigned char *payload = in + pos + 5;
            if (tag == 'B') {
                have_page = 0;
            } else if (tag == 'P' && len - 4 >= BLCKSZ) {
                memcpy(page, payload + (len - 4 - BLCKSZ), BLCKSZ);
                have_page = 1;
            } else if (tag == 'G' || tag == 'H') {
                if (answers == MAXOUT) {
                    if (write_all(out, answers * BLCKSZ) < 0)
                        return 1;
                    answers = 0;
                }
                if (tag == 'G' && have_page)
                    memcpy(out + answers * BLCKSZ, page, BLCKSZ);
                else
                    memset(out + answers * BLCKSZ, 0, BLCKSZ);
                answers++;
            }
            pos += 5 + (len - 4);
        }
        memmove(in, in + pos, have - pos);
        have -= pos;
        if (answers > 0 && write_all(out, answers * BLCKSZ) < 0)
            return 1;
    }
}

int main(int argc, char **argv)
{
#ifdef ECHO_ALWAYS
    return echo_loop();
#endif
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--echo") == 0)
            return echo_loop();
    size_t have = 0;       /* bytes in `in` */
    uint64_t skip = 0;     /* payload bytes still to discard (may span reads) */
    for (;;) {
        ssize_t r = read(0, in + have, INBUF - have);
        if (r < 0)
            return 1;
        if (r == 0)
            return have == 0 && skip == 0 ? 0 : 1;
        have += (size_t) r;
        size_t pos = 0, answers = 0;
        if (skip > 0) {
            size_t drop = skip < have ? (size_t) skip : have;
            pos += drop;
            skip -= drop;
        }
        while (skip == 0 && have - pos >= 5) {
            unsigned char tag = in[pos];
            uint32_t len = ((uint32_t) in[pos + 1] << 24) | ((uint32_t) in[pos + 2] << 16) |
                           ((uint32_t) in[pos + 3] << 8) | (uint32_t) in[pos + 4];
            if (len < 4)
                return 1;
            if (tag == 'H' || tag == 'G')
                answers++;
            pos += 5;
            uint64_t payload = len - 4;
            size_t avail = have - pos;
            if (payload <= avail) {
                pos += (size_t) payload;
            } else {
                pos = have;
                skip = payload - avail;
            }
        }
        memmove(in, in + pos, have - pos);
        have -= pos;
        if (answers > 0 && answer(answers) < 0)
            return 1;
    }
}
