/* kvm-fuzz: shared declarations (tools/kvm_fuzz/README.md describes the tool).
 *
 * Everything random comes from one xorshift64* stream per run, and the stream is never
 * fed with results: the same seed gives the same sequence of calls on any backend, so
 * `--diff` can line up the transcripts of the real /dev/kvm and softkvm call by call. */
#ifndef KVM_FUZZ_H
#define KVM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------- random numbers (rng.c) ---------------- */
struct fz_rng {
    uint64_t s;
};
void fz_rng_seed(struct fz_rng *r, uint64_t seed);
uint64_t fz_rand(struct fz_rng *r);
static inline uint64_t fz_below(struct fz_rng *r, uint64_t n) { return n ? fz_rand(r) % n : 0; }
static inline bool fz_chance(struct fz_rng *r, unsigned pct) { return fz_below(r, 100) < pct; }
/* A "interesting" integer: 0, 1, -1, small, powers of two +-1, random 32/64 bit. */
uint64_t fz_interesting(struct fz_rng *r);
void fz_fill(struct fz_rng *r, void *buf, size_t len);

/* ---------------- backends (backend.c) ---------------- */
enum fz_backend_kind { FZ_SOFTKVM, FZ_REAL };
/* open /dev/kvm, ioctl, close: the real kernel's, or softkvm's library in this process
 * (abi_process; it never opens the real /dev/kvm). Return -errno on failure. */
void fz_backend_init(enum fz_backend_kind k);
enum fz_backend_kind fz_backend(void);
int fz_open_kvm(void);
long fz_ioctl(int fd, unsigned long req, unsigned long arg);
void fz_close(int fd);
/* Arms a periodic SIGALRM (0: off) so a KVM_RUN that does not exit by itself ends with EINTR. */
void fz_run_timer(unsigned usec);

/* ---------------- host memory with guard pages (mem.c) ---------------- */
/* A mapping of `pages` usable pages with `guard` PROT_NONE pages on each side; the guard
 * pages are registered so a host fault in them is reported as a guard touch. */
void *fz_map_guarded(size_t pages, size_t guard, const char *label);
/* Called from the SIGSEGV/SIGBUS handler: the label of the guard region holding addr. */
const char *fz_guard_label(const void *addr);
extern unsigned long fz_guard_touches;

/* What the crash handler prints about the call under way (set before each call). */
void fz_set_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fz_install_crash_handler(void);

/* ---------------- output ---------------- */
struct fz_opts {
    uint64_t seed;
    uint64_t count;     /* ioctls (ioctl mode) or iterations (guest mode) */
    bool quiet;
    bool diff_format;   /* transcript lines only, for --diff */
};
const char *fz_errname(long err); /* "EINVAL" for -EINVAL */

/* ioctl_fuzz.c / guest_fuzz.c: return 0 on success (no crash/corruption found). */
int fz_ioctl_main(const struct fz_opts *o);
int fz_guest_main(const struct fz_opts *o);
/* stress.c: 8 vCPU threads against concurrent filter/slot/signal changes */
int fz_stress_main(const struct fz_opts *o);
/* diff.c */
int fz_diff_main(const struct fz_opts *o, const char *self);

#endif
