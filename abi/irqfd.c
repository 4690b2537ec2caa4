/* abi/: KVM_IRQFD. Signalling an eventfd injects a GSI into the in-kernel
 * irqchip without an ioctl per interrupt. Behaviour mirrors Linux 6.12
 * virt/kvm/eventfd.c (kvm_irqfd, kvm_irqfd_assign/deassign, irqfd_inject,
 * the resampler and kvm_irqfd_release).
 *
 * Mechanism: KVM hooks the eventfd's wait queue; user space cannot, so one
 * thread per VM (started at the first assign) epoll_waits on our dups of all
 * assigned eventfds plus an internal wake eventfd (shutdown). On EPOLLIN it
 * reads (clears) the counter, as irqfd_wakeup's eventfd_ctx_do_read, and
 * injects through the routing table as it is at that moment, which is how
 * KVM's result looks too (kvm_irq_routing_update re-resolves every irqfd on
 * KVM_SET_GSI_ROUTING, and irqfd_inject uses kvm_set_irq on the GSI).
 *
 * Every injection runs under irqfds->lock, and DEASSIGN removes the entry
 * under it, so after DEASSIGN returns that eventfd injects nothing more
 * (KVM: flush_workqueue in kvm_irqfd_deassign). Lock order:
 * irqfds->lock -> irqchip lock; the ack notifier is called by the irqchip
 * without its lock, so it may take irqfds->lock.
 *
 * EPOLLHUP: KVM detaches an irqfd when the eventfd file is released, i.e.
 * when user space closed its last fd. We hold a dup (as abi/ioeventfd.c does,
 * to read the counter and keep the fd number from being reused under us),
 * so the file is never released while assigned and that detach cannot
 * happen: an irqfd stays until KVM_IRQFD with DEASSIGN or VM destruction.
 * VMMs (QEMU, cloud-hypervisor) deassign before they close, so they see no
 * difference; a VMM that only closes keeps the (harmless) injection source
 * alive until the VM goes. */
#include <errno.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "abi/abi_internal.h"

#define WAKE_TOKEN 0 /* epoll token of the internal wake eventfd; irqfd ids start at 1 */

struct irqfd {
    uint64_t id;    /* epoll token */
    int fd;         /* our dup of the eventfd */
    int resamplefd; /* our dup of the resample eventfd, or -1 */
    uint32_t gsi;
};

struct abi_irqfds {
    pthread_mutex_t lock; /* items, and every injection */
    struct abi_irqchip *chip;
    struct irqfd *items;
    unsigned n, cap;
    uint64_t next_id;
    bool notifier;        /* our ack notifier is installed on chip */
    bool stop;
    int epfd, wakefd;
    pthread_t thread;
};

/* ---------------- eventfd helpers ---------------- */

/* eventfd-id from /proc/self/fdinfo (Linux >= 6.0), -1 if not shown. */
static long long eventfd_id(int fd)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long long id = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "eventfd-id: %lld", &id) == 1)
            break;
    fclose(f);
    return id;
}

/* Whether two fds are the same eventfd (KVM compares eventfd_ctx pointers).
 * kcmp may be filtered (seccomp), then the eventfd-id decides. */
static bool same_eventfd(int a, int b)
{
    long r = syscall(SYS_kcmp, (long)getpid(), (long)getpid(), KCMP_FILE, (long)a, (long)b);
    if (r >= 0)
        return r == 0;
    long long ia = eventfd_id(a);
    return ia >= 0 && ia == eventfd_id(b);
}

/* Clear the counter without blocking: true if it was non-zero. O_NONBLOCK is
 * not ours to set (it would change the caller's fd too), so RWF_NOWAIT; on
 * kernels whose eventfd lacks it, poll first (nobody else reads an irqfd). */
static bool eventfd_take(int fd)
{
    uint64_t cnt;
    struct iovec iov = {.iov_base = &cnt, .iov_len = sizeof cnt};
    ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
            return false;
        n = read(fd, &cnt, sizeof cnt);
    }
    return n == (ssize_t)sizeof cnt;
}

static void eventfd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n; /* only fails when the counter would overflow: it is signalled anyway */
}

/* ---------------- injection ---------------- */

/* irqfd_inject: a pulse (1 then 0) so an edge pin sees an edge and a level
 * pin is not left asserted; with a resampler the level stays 1 until the
 * guest acks (irqfd_resampler_ack). MSI routes deliver on the 1. */
static void inject(struct abi_irqfds *st, const struct irqfd *q)
{
    abi_irqchip_set_irq(st->chip, q->gsi, 1);
    if (q->resamplefd < 0)
        abi_irqchip_set_irq(st->chip, q->gsi, 0);
}

static struct irqfd *find_id(struct abi_irqfds *st, uint64_t id)
{
    for (unsigned i = 0; i < st->n; i++)
        if (st->items[i].id == id)
            return &st->items[i];
    return NULL;
}

/* Ack notifier (irqfd_resampler_ack): lower the line once, then tell every
 * resampling irqfd of this GSI so user space can re-check its device. */
static void resampler_ack(void *ctx, uint32_t gsi)
{
    struct abi_irqfds *st = ctx;
    bool lowered = false;
    pthread_mutex_lock(&st->lock);
    for (unsigned i = 0; i < st->n; i++) {
        const struct irqfd *q = &st->items[i];
        if (q->resamplefd < 0 || q->gsi != gsi)
            continue;
        if (!lowered)
            abi_irqchip_set_irq(st->chip, gsi, 0);
        lowered = true;
        eventfd_signal(q->resamplefd);
    }
    pthread_mutex_unlock(&st->lock);
}

static bool any_resampler(const struct abi_irqfds *st, int gsi)
{
    for (unsigned i = 0; i < st->n; i++)
        if (st->items[i].resamplefd >= 0 && (gsi < 0 || st->items[i].gsi == (uint32_t)gsi))
            return true;
    return false;
}

/* Install the ack notifier while some irqfd resamples (KVM registers one per
 * resampler); an uninstalled notifier keeps lapic_eoi off the IOAPIC for edge
 * vectors. st->lock held. */
static void update_notifier(struct abi_irqfds *st)
{
    bool want = any_resampler(st, -1);
    if (want == st->notifier)
        return;
    abi_irqchip_set_ack_notifier(st->chip, want ? resampler_ack : NULL, want ? st : NULL);
    st->notifier = want;
}

/* ---------------- the thread ---------------- */

static void handle_event(struct abi_irqfds *st, uint64_t token)
{
    if (token == WAKE_TOKEN) {
        eventfd_take(st->wakefd);
        return;
    }
    struct irqfd *q = find_id(st, token);
    /* a stale event of an irqfd deassigned meanwhile injects nothing */
    if (q && eventfd_take(q->fd))
        inject(st, q);
}

static void *irqfd_thread(void *arg)
{
    struct abi_irqfds *st = arg;
    struct epoll_event ev[16];
    for (;;) {
        int n = epoll_wait(st->epfd, ev, 16, -1);
        if (n < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&st->lock);
        bool stop = st->stop;
        for (int i = 0; i < n && !stop; i++)
            handle_event(st, ev[i].data.u64);
        pthread_mutex_unlock(&st->lock);
        if (stop)
            break;
    }
    return NULL;
}

static void state_close(struct abi_irqfds *st)
{
    if (st->epfd >= 0)
        close(st->epfd);
    if (st->wakefd >= 0)
        close(st->wakefd);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static struct abi_irqfds *state_create(struct abi_irqchip *chip)
{
    struct abi_irqfds *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    st->chip = chip;
    st->next_id = WAKE_TOKEN + 1;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    st->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
    if (st->epfd < 0 || st->wakefd < 0 || epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->wakefd, &ev)) {
        state_close(st);
        return NULL;
    }
    /* like the APIC timer thread: never take the VMM's signals */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = pthread_create(&st->thread, NULL, irqfd_thread, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        state_close(st);
        return NULL;
    }
    return st;
}

/* ---------------- assign / deassign ---------------- */

static void close_irqfd(struct abi_irqfds *st, const struct irqfd *q)
{
    epoll_ctl(st->epfd, EPOLL_CTL_DEL, q->fd, NULL);
    close(q->fd);
    if (q->resamplefd >= 0)
        close(q->resamplefd);
}

/* Remove items[i] (st->lock held). The last resampler of a GSI lowers the
 * line it may still hold (irqfd_resampler_shutdown). */
static void remove_irqfd(struct abi_irqfds *st, unsigned i)
{
    struct irqfd q = st->items[i];
    st->items[i] = st->items[--st->n];
    close_irqfd(st, &q);
    if (q.resamplefd >= 0 && !any_resampler(st, (int)q.gsi))
        abi_irqchip_set_irq(st->chip, q.gsi, 0);
    update_notifier(st);
}

static int add_irqfd(struct abi_irqfds *st, const struct kvm_irqfd *a)
{
    for (unsigned i = 0; i < st->n; i++)
        if (same_eventfd(st->items[i].fd, (int)a->fd))
            return -EBUSY; /* "This fd is used for another irq already." */
    if (st->n == st->cap) {
        unsigned cap = st->cap ? 2 * st->cap : 16;
        struct irqfd *t = realloc(st->items, cap * sizeof *t);
        if (!t)
            return -ENOMEM;
        st->items = t;
        st->cap = cap;
    }
    struct irqfd q = {.id = st->next_id++, .fd = dup((int)a->fd), .resamplefd = -1, .gsi = a->gsi};
    if (a->flags & KVM_IRQFD_FLAG_RESAMPLE)
        q.resamplefd = dup((int)a->resamplefd);
    /* level-triggered EPOLLIN: a counter already non-zero injects at once,
     * as kvm_irqfd_assign's vfs_poll check */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = q.id};
    int err = 0;
    if (q.fd < 0 || ((a->flags & KVM_IRQFD_FLAG_RESAMPLE) && q.resamplefd < 0))
        err = -errno;
    else if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, q.fd, &ev))
        err = -errno;
    if (err) {
        if (q.fd >= 0)
            close(q.fd);
        if (q.resamplefd >= 0)
            close(q.resamplefd);
        return err;
    }
    st->items[st->n++] = q;
    update_notifier(st);
    return 0;
}

static struct abi_irqfds *get_state(struct abi_vm *vm, bool create)
{
    pthread_mutex_lock(&vm->lock);
    if (!vm->irqfds && create)
        vm->irqfds = state_create(vm->irqchip_state);
    struct abi_irqfds *st = vm->irqfds;
    pthread_mutex_unlock(&vm->lock);
    return st;
}

/* kvm_irqfd_deassign: 0 whether or not (fd, gsi) was assigned. */
static long deassign(struct abi_vm *vm, const struct kvm_irqfd *a)
{
    int err = abi_eventfd_check((int)a->fd);
    if (err)
        return err;
    struct abi_irqfds *st = get_state(vm, false);
    if (!st)
        return 0;
    pthread_mutex_lock(&st->lock);
    for (unsigned i = 0; i < st->n;) {
        if (st->items[i].gsi == a->gsi && same_eventfd(st->items[i].fd, (int)a->fd))
            remove_irqfd(st, i);
        else
            i++;
    }
    pthread_mutex_unlock(&st->lock);
    return 0;
}

/* kvm_irqfd_assign, in its order of checks: irqchip (kvm_arch_irqfd_allowed:
 * EINVAL without one), fd (EBADF / EINVAL if not an eventfd), resamplefd,
 * then EBUSY for an eventfd already assigned (any GSI). */
static long assign(struct abi_vm *vm, const struct kvm_irqfd *a)
{
    if (!vm->irqchip_state)
        return -EINVAL;
    int err = abi_eventfd_check((int)a->fd);
    if (!err && (a->flags & KVM_IRQFD_FLAG_RESAMPLE))
        err = abi_eventfd_check((int)a->resamplefd);
    if (err)
        return err;
    struct abi_irqfds *st = get_state(vm, true);
    if (!st)
        return -ENOMEM;
    pthread_mutex_lock(&st->lock);
    err = add_irqfd(st, a);
    pthread_mutex_unlock(&st->lock);
    return err;
}

long abi_vm_irqfd(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_irqfd a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    if (a.flags & ~(uint32_t)(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE))
        return -EINVAL;
    if (a.flags & KVM_IRQFD_FLAG_DEASSIGN)
        return deassign(vm, &a);
    return assign(vm, &a);
}

/* kvm_irqfd_release: every irqfd goes with the VM. */
void abi_irqfd_free(struct abi_vm *vm)
{
    struct abi_irqfds *st = vm->irqfds;
    if (!st)
        return;
    vm->irqfds = NULL;
    pthread_mutex_lock(&st->lock);
    st->stop = true;
    if (st->notifier)
        abi_irqchip_set_ack_notifier(st->chip, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    eventfd_signal(st->wakefd);
    pthread_join(st->thread, NULL);
    for (unsigned i = 0; i < st->n; i++)
        close_irqfd(st, &st->items[i]);
    free(st->items);
    state_close(st);
}
