/* abi/: KVM_IOEVENTFD. A guest write (port I/O or MMIO) that matches a registered
 * address/length (and value, with DATAMATCH) signals the eventfd instead of exiting to
 * user space. Validation and errno mirror virt/kvm/eventfd.c kvm_ioeventfd() (6.12). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi/abi_internal.h"

/* KVM_IOEVENTFD_VALID_FLAG_MASK: every flag up to VIRTIO_CCW_NOTIFY, on every arch */
#define VALID_FLAGS                                                                        \
    (KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DEASSIGN |  \
     KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY)

static bool is_eventfd(int fd)
{
    char path[64], link[64] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0)
        return false;
    link[n] = 0;
    return strcmp(link, "anon_inode:[eventfd]") == 0;
}

int abi_eventfd_check(int fd)
{
    if (is_eventfd(fd))
        return 0;
    return fcntl(fd, F_GETFD) >= 0 ? -EINVAL : -EBADF; /* eventfd_ctx_fdget() */
}

/* ioeventfd_bus_from_flags: PIO, else VIRTIO_CCW_NOTIFY, else MMIO */
static void bus_of(uint32_t flags, bool *pio, bool *ccw)
{
    *pio = flags & KVM_IOEVENTFD_FLAG_PIO;
    *ccw = !*pio && (flags & KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY);
}

/* kvm_deassign_ioeventfd_idx's match (minus the eventfd identity, which we do not track) */
static bool same(const struct abi_ioeventfd *e, const struct kvm_ioeventfd *a)
{
    bool pio, ccw;
    bus_of(a->flags, &pio, &ccw);
    bool dm = a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH;
    return e->pio == pio && e->ccw == ccw && e->addr == a->addr && e->len == a->len &&
           e->datamatch == dm && (!dm || e->value == a->datamatch);
}

/* ioeventfd_check_collision: a length-0 entry collides with any length at its address,
 * and a wildcard with any value */
static bool collides(const struct abi_ioeventfd *e, const struct kvm_ioeventfd *a)
{
    bool pio, ccw;
    bus_of(a->flags, &pio, &ccw);
    bool dm = a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH;
    return e->pio == pio && e->ccw == ccw && e->addr == a->addr &&
           (!e->len || !a->len ||
            (e->len == a->len && (!e->datamatch || !dm || e->value == a->datamatch)));
}

long abi_vm_ioeventfd(struct abi_vm *vm, unsigned long arg)
{
    struct kvm_ioeventfd a;
    if (abi_copy_from_user(&a, (void *)arg, sizeof a))
        return -EFAULT;
    long r = 0;
    if (a.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
        /* kvm_deassign_ioeventfd validates nothing but the eventfd */
        if ((r = abi_eventfd_check(a.fd)))
            return r;
        pthread_mutex_lock(&vm->lock);
        r = -ENOENT;
        for (unsigned i = 0; i < vm->nioeventfds; i++)
            if (same(&vm->ioeventfds[i], &a)) {
                close(vm->ioeventfds[i].fd);
                vm->ioeventfds[i] = vm->ioeventfds[--vm->nioeventfds];
                r = 0;
                break;
            }
        goto out;
    }
    switch (a.len) {
    case 0: case 1: case 2: case 4: case 8:
        break;
    default:
        return -EINVAL;
    }
    if (a.addr + a.len < a.addr)
        return -EINVAL;
    if (a.flags & ~(uint32_t)VALID_FLAGS)
        return -EINVAL;
    /* length 0 (any length) cannot carry DATAMATCH */
    if (a.len == 0 && (a.flags & KVM_IOEVENTFD_FLAG_DATAMATCH))
        return -EINVAL;
    if ((r = abi_eventfd_check(a.fd)))
        return r;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nioeventfds; i++)
        if (collides(&vm->ioeventfds[i], &a)) {
            r = -EEXIST;
            goto out;
        }
    if (vm->nioeventfds == ABI_MAX_IOEVENTFDS) {
        r = -ENOSPC; /* KVM: the I/O bus is full */
        goto out;
    }
    int fd = dup(a.fd); /* KVM holds its own reference to the eventfd */
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    vm->ioeventfds[vm->nioeventfds++] = (struct abi_ioeventfd){
        .pio = a.flags & KVM_IOEVENTFD_FLAG_PIO,
        .ccw = !(a.flags & KVM_IOEVENTFD_FLAG_PIO) && (a.flags & KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY),
        .datamatch = a.flags & KVM_IOEVENTFD_FLAG_DATAMATCH,
        .addr = a.addr,
        .len = a.len,
        .value = a.datamatch,
        .fd = fd,
    };
out:
    pthread_mutex_unlock(&vm->lock);
    return r;
}

bool abi_ioeventfd_signal(struct abi_vm *vm, bool pio, uint64_t addr, const void *data,
                          unsigned len)
{
    uint64_t val = 0;
    memcpy(&val, data, len > 8 ? 8 : len);
    bool hit = false;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->nioeventfds && !hit; i++) {
        const struct abi_ioeventfd *e = &vm->ioeventfds[i];
        if (e->ccw || e->pio != pio || e->addr != addr || (e->len && e->len != len))
            continue;
        if (e->datamatch && e->value != val)
            continue;
        uint64_t one = 1;
        hit = write(e->fd, &one, sizeof one) == sizeof one;
    }
    pthread_mutex_unlock(&vm->lock);
    return hit;
}

void abi_ioeventfd_free(struct abi_vm *vm)
{
    for (unsigned i = 0; i < vm->nioeventfds; i++)
        close(vm->ioeventfds[i].fd);
    vm->nioeventfds = 0;
}
