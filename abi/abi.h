/* abi/: public interface of the KVM ioctl layer.
 *
 * Used by the LD_PRELOAD transport (abi/preload/) and by in-process tests. All
 * state lives in an explicit struct abi_process (one per process in the preload
 * shim; tests may create several). Functions return >= 0 on success and -errno
 * on failure, exactly the errno Linux KVM would give.
 */
#ifndef SOFTKVM_ABI_H
#define SOFTKVM_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct abi_process;

struct abi_process *abi_process_create(void);
void abi_process_destroy(struct abi_process *p);

/* open("/dev/kvm", flags): returns a real fd (a memfd) that now stands for a KVM system fd. */
int abi_open_dev_kvm(struct abi_process *p, int flags);
/* Is `fd` one of ours? (cheap; safe to call for any fd) */
bool abi_owns_fd(struct abi_process *p, int fd);
/* ioctl on one of our fds. */
long abi_ioctl(struct abi_process *p, int fd, unsigned long request, unsigned long arg);
/* The caller closed `fd` (after the real close succeeded): drop our reference. */
void abi_fd_closed(struct abi_process *p, int fd);
/* `newfd` is now a duplicate of our `oldfd` (dup/dup2/dup3/F_DUPFD). */
void abi_fd_duped(struct abi_process *p, int oldfd, int newfd);

/* A signal arrived in this thread: if it is inside KVM_RUN, make KVM_RUN return
 * -EINTR with KVM_EXIT_INTR (KVM: signal_pending() check in vcpu_run). Async-signal-safe. */
void abi_signal_arrived(void);
/* From a SIGSEGV/SIGBUS handler (installed with SA_SIGINFO | SA_NODEFER): a fault at `addr`
 * inside a memory slot's host mapping while this thread runs a vCPU ends that KVM_RUN with
 * EFAULT, as KVM does (this call then does not return). false: not ours. */
bool abi_host_fault(void *addr);

/* Thread `t` is about to be cancelled (pthread_cancel): if it is inside KVM_RUN, make
 * KVM_RUN return -EINTR as the cancellation signal would on Linux KVM. */
bool abi_thread_interrupt(struct abi_process *p, unsigned long t); /* true: t was in KVM_RUN */

/* For a vCPU fd: the memfd of its VM's coalesced MMIO ring, which must appear at page
 * ABI_COALESCED_MMIO_PAGE_OFFSET of every mapping of the vCPU fd; else -1. */
int abi_vcpu_ring_fd(struct abi_process *p, int fd);

/* Text of /sys/module/<module>/parameters/<param> as a KVM with our configuration would
 * show it, or NULL when that file would not exist (e.g. kvm_amd on an Intel flavour). */
const char *abi_module_param(const char *module, const char *param);
/* Does the directory /sys/module/<module> exist for our KVM? */
bool abi_module_exists(const char *module);

/* vCPU mmap size (KVM_GET_VCPU_MMAP_SIZE): kvm_run page, PIO data page, coalesced MMIO page. */
#define ABI_VCPU_MMAP_PAGES 3
#define ABI_PIO_PAGE_OFFSET 1
#define ABI_COALESCED_MMIO_PAGE_OFFSET 2

/* guest_memfd files (abi/gmem.c): for an fd that is one, what the operation must fail with
 * (-EINVAL for read/write, -ENODEV for mmap); 0 for any other fd. */
enum abi_gmem_op { ABI_GMEM_RW, ABI_GMEM_MMAP };
int abi_gmem_file_op(struct abi_process *p, int fd, enum abi_gmem_op op);
/* fallocate on a guest_memfd (*ours set): KVM's result (0 or -errno). */
long abi_gmem_fallocate(struct abi_process *p, int fd, int mode, int64_t off, int64_t len,
                        bool *ours);

#endif
