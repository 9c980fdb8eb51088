/* Allocations known exactly, between sync points: writes "ready"; then for
 * each byte read on stdin allocates, prints "<name> <hex value>" lines and
 * "done"; exits at the end of stdin. Only write/read between the sync points:
 * nothing else allocates. Built with -fno-builtin: every call is made as
 * written (the compiler would drop free(malloc(n)) and turn realloc(NULL, n)
 * into malloc(n)). Modes: all | loop N [THREADS] | fork. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *name, uintptr_t value) {
    char line[64];
    size_t n = strlen(name);
    memcpy(line, name, n);
    line[n++] = ' ';
    char digits[16];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value);
    while (count) line[n++] = digits[--count];
    line[n++] = '\n';
    write(1, line, n);
}

static int go(void) {
    char byte;
    return read(0, &byte, 1) == 1;
}

static void all(void) {
    void *p = malloc(1001);
    say("malloc", (uintptr_t)p);
    void *c = calloc(3, 333);
    say("calloc", (uintptr_t)c);
    void *r = realloc(p, 2002);
    say("realloc", (uintptr_t)r);
    void *n = realloc(NULL, 3003);
    say("realloc_null", (uintptr_t)n);
    void *ra = reallocarray(NULL, 4, 1001);
    say("reallocarray", (uintptr_t)ra);
    void *pm = NULL;
    if (posix_memalign(&pm, 64, 5005) != 0) _exit(3);
    say("posix_memalign", (uintptr_t)pm);
    void *aa = aligned_alloc(64, 6016);
    say("aligned_alloc", (uintptr_t)aa);
    void *ma = memalign(64, 7007);
    say("memalign", (uintptr_t)ma);
    void *va = valloc(8008);
    say("valloc", (uintptr_t)va);
    void *pv = pvalloc(9009);
    say("pvalloc", (uintptr_t)pv);
    void *mm = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    say("mmap", (uintptr_t)mm);
    void *mr = mremap(mm, 65536, 131072, MREMAP_MAYMOVE);
    say("mremap", (uintptr_t)mr);
    munmap(mr, 131072);
    void *big = malloc(1 << 20); /* glibc maps it: its own mmap is not a record */
    say("big", (uintptr_t)big);
    free(big);
    /* Failed calls: nothing recorded. */
    void *none = NULL;
    if (malloc(SIZE_MAX) || calloc(SIZE_MAX, 2) || posix_memalign(&none, 3, 10) == 0) _exit(4);
    if (mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0) != MAP_FAILED) _exit(5);
    free(NULL);
    void *frees[] = {r, n, ra, pm, aa, ma, va, pv, c};
    for (size_t i = 0; i < sizeof frees / sizeof *frees; i++) free(frees[i]);
}

static void loop(long count) {
    for (long i = 0; i < count; i++) free(malloc(4242));
}

/* `loop N THREADS`: each round, the main thread and THREADS - 1 others
 * started before "ready" make N pairs each, at once. */
static long loop_count;
static pthread_barrier_t round_start, round_end;

static void loop_round(void) {
    pthread_barrier_wait(&round_start);
    loop(loop_count);
    pthread_barrier_wait(&round_end);
}

static void *loop_thread(void *unused) {
    for (;;) loop_round();
    return unused;
}

static void start_loop_threads(long count, unsigned threads) {
    loop_count = count;
    pthread_barrier_init(&round_start, NULL, threads);
    pthread_barrier_init(&round_end, NULL, threads);
    for (unsigned i = 1; i < threads; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, loop_thread, NULL) != 0) _exit(6);
    }
}

static void forked(void) {
    pid_t child = fork();
    if (child == 0) {
        void *p = malloc(5151);
        say("child_malloc", (uintptr_t)p);
        free(p);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    say("child", (uintptr_t)child);
    void *p = malloc(6161);
    say("parent_malloc", (uintptr_t)p);
    free(p);
}

int main(int argc, char **argv) {
    int looping = argc > 2 && strcmp(argv[1], "loop") == 0;
    if (looping) start_loop_threads(atol(argv[2]), argc > 3 ? (unsigned)atoi(argv[3]) : 1);
    write(1, "ready\n", 6);
    while (go()) {
        if (argc > 1 && strcmp(argv[1], "all") == 0) all();
        else if (looping) loop_round();
        else if (argc > 1 && strcmp(argv[1], "fork") == 0) forked();
        else _exit(1);
        write(1, "done\n", 5);
    }
    return 0;
}
