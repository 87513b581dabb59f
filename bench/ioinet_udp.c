/* One process sends 1-byte UDP datagrams to itself over loopback and reads each back:
 * prints the mean ns per send+receive over N iterations. Each send runs a NET_RX
 * softirq in the sender's context, so the loop is softirq-heavy without waking
 * another task. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    if (bind(s, (struct sockaddr *)&addr, len) || getsockname(s, (struct sockaddr *)&addr, &len) ||
        connect(s, (struct sockaddr *)&addr, len)) {
        perror("socket");
        return 1;
    }
    char byte = 'x';
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (send(s, &byte, 1, 0) != 1 || recv(s, &byte, 1, 0) != 1) {
            perror("udp");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.1f\n", ns / n);
    return 0;
}
