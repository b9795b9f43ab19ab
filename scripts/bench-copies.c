/*
 * What one 1 MiB chunk of a writer-odps block costs the kernel, by the ways the chunk
 * can reach the socket and the spool (BENCHMARKS.md, issue 19's twelfth and
 * fourteenth rounds).
 *
 *   gcc -O2 -mavx2 -o /tmp/bench-copies scripts/bench-copies.c
 *   /tmp/bench-copies MODE        (prints the sender's user and system CPU seconds)
 *
 * Another spool size: add -DSPOOL_MIB=8 (or 240) to the gcc command.
 *
 * A child drains a loopback TCP connection; the parent sends 1 GiB in 1 MiB chunks from
 * one buffer, the spool being an unlinked file of SPOOL_MIB (default 60) MiB in the
 * current directory, overwritten in turn as writer-odps's recycled spool files are.
 * Modes:
 *   0  pwrite to the spool, write to the socket           (what writer-odps does)
 *   1  pwrite to the spool, sendfile from it to the socket
 *   2  write to the socket only                           (no spool: the floor)
 *   3  vmsplice the buffer into a pipe, splice it to the socket (no spool)
 *   4  spool mmap'd (fallocated): memcpy into it, write to the socket from the map
 *   5  spool mmap'd (fallocated): non-temporal AVX2 stores into it, write from the buffer
 *   6  no file: memcpy into a region of anonymous memory of the spool's size (touched once
 *      before the clock starts), write from the buffer (the block kept in memory instead)
 * Not part of any build or test: a measurement kept so the figures can be rerun.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <immintrin.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (1L << 20)
#define TOTAL (1L << 30)
#ifndef SPOOL_MIB
#define SPOOL_MIB 60
#endif
#define SPOOL ((long)SPOOL_MIB << 20)

static void die(const char *what) { perror(what); exit(1); }

static void send_all(int s, const char *p, long n) {
  while (n > 0) {
    long w = write(s, p, n);
    if (w <= 0) die("write");
    p += w;
    n -= w;
  }
}

static void stream_copy(char *d, const char *s, long n) {
  for (long i = 0; i < n; i += 64) {
    __m256i a = _mm256_load_si256((const __m256i *)(s + i));
    __m256i b = _mm256_load_si256((const __m256i *)(s + i + 32));
    _mm256_stream_si256((__m256i *)(d + i), a);
    _mm256_stream_si256((__m256i *)(d + i + 32), b);
  }
  _mm_sfence();
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s MODE\n", argv[0]); return 2; }
  int mode = atoi(argv[1]);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (void *)&a, &len)) die("listen");
  if (fork() == 0) {
    int c = accept(ls, 0, 0);
    char *b = malloc(CHUNK);
    while (read(c, b, CHUNK) > 0) {}
    exit(0);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (void *)&a, sizeof a)) die("connect");
  char name[] = "bench-copies-XXXXXX";
  int f = mkstemp(name);
  if (f < 0) die("mkstemp");
  unlink(name);
  char *buf = aligned_alloc(4096, CHUNK);
  for (long i = 0; i < CHUNK; i++) buf[i] = 'a' + i % 26;
  char *map = NULL;
  if (mode == 4 || mode == 5) {
    if (fallocate(f, 0, 0, SPOOL)) die("fallocate");
    map = mmap(NULL, SPOOL, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (map == MAP_FAILED) die("mmap");
  }
  char *kept = NULL;
  if (mode == 6) {
    kept = aligned_alloc(4096, SPOOL);
    if (!kept) die("aligned_alloc");
    memset(kept, 0, SPOOL);
  }
  int pp[2];
  if (pipe(pp) || fcntl(pp[1], F_SETPIPE_SZ, CHUNK) < 0) die("pipe");
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  long off = 0;
  for (long done = 0; done < TOTAL; done += CHUNK) {
    buf[(done / CHUNK) % 4096]++; /* each chunk differs from the last */
    switch (mode) {
    case 0: case 1:
      if (pwrite(f, buf, CHUNK, off) != CHUNK) die("pwrite");
      if (mode == 0) { send_all(s, buf, CHUNK); break; }
      for (off_t o = off; o < off + CHUNK;)
        if (sendfile(s, f, &o, off + CHUNK - o) <= 0) die("sendfile");
      break;
    case 2:
      send_all(s, buf, CHUNK);
      break;
    case 3:
      for (long w = 0; w < CHUNK;) {
        struct iovec iov = {buf + w, CHUNK - w};
        long n = vmsplice(pp[1], &iov, 1, 0);
        if (n <= 0) die("vmsplice");
        for (long m = 0; m < n;) {
          long k = splice(pp[0], NULL, s, NULL, n - m, SPLICE_F_MOVE | SPLICE_F_MORE);
          if (k <= 0) die("splice");
          m += k;
        }
        w += n;
      }
      break;
    case 4:
      memcpy(map + off, buf, CHUNK);
      send_all(s, map + off, CHUNK);
      break;
    case 5:
      stream_copy(map + off, buf, CHUNK);
      send_all(s, buf, CHUNK);
      break;
    case 6:
      memcpy(kept + off, buf, CHUNK);
      send_all(s, buf, CHUNK);
      break;
    default:
      fprintf(stderr, "unknown mode %d\n", mode);
      return 2;
    }
    off = (off + CHUNK) % SPOOL;
  }
  getrusage(RUSAGE_SELF, &r1);
  printf("mode %d: user %.3f s, system %.3f s\n", mode,
         seconds(r1.ru_utime) - seconds(r0.ru_utime), seconds(r1.ru_stime) - seconds(r0.ru_stime));
  shutdown(s, SHUT_WR);
  wait(NULL);
  return 0;
}
