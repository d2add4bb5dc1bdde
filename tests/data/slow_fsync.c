/* A slow disk, for tests/integration/slow_disk.rs: preloaded into the bridge
 * (LD_PRELOAD), every fsync and fdatasync sleeps SLOW_FSYNC_MS milliseconds (1000 if
 * unset) before it syncs, as on a busy or throttled volume. Built by the test with the
 * system's cc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void wait_like_a_slow_disk(void) {
    const char *setting = getenv("SLOW_FSYNC_MS");
    long ms = setting ? atol(setting) : 1000;
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    wait_like_a_slow_disk();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    wait_like_a_slow_disk();
    return real(fd);
}
