/* O_DIRECT 4 KiB random reads from a block device: prints the mean ns per read over N reads. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DEVICE READS\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    off_t blocks = lseek(fd, 0, SEEK_END) / 4096;
    void *buf;
    if (posix_memalign(&buf, 4096, 4096) != 0)
        return 1;
    unsigned int seed = 42;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        off_t block = (off_t)(rand_r(&seed) % blocks);
        if (pread(fd, buf, 4096, block * 4096) != 4096) {
            perror("pread");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}
