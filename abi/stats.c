/* abi/: KVM_GET_STATS_FD, the binary statistics format of api.rst "KVM_GET_STATS_FD":
 * header, id string (name_size bytes), descriptors (each followed by a name_size name),
 * then the u64 values. The fd is a memfd holding that layout (so read/pread/lseek work
 * natively); the values are a snapshot taken by the KVM_GET_STATS_FD call (KVM's are
 * live: re-open the fd for fresh values). Each call returns an independent read-only
 * open file with its own offset, like KVM. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi/abi_internal.h"

#define NAME_SIZE 48 /* KVM_STATS_NAME_SIZE (kernel-internal constant) */

struct stat_def {
    const char *name;
    uint32_t flags;
    size_t offset; /* into struct abi_vcpu; SIZE_MAX = VM-wide value computed on the fly */
};

#define CUMUL (KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)

static const struct stat_def vcpu_stats[] = {
    {"exits", CUMUL, offsetof(struct abi_vcpu, stat_exits)},
    {"io_exits", CUMUL, offsetof(struct abi_vcpu, stat_io_exits)},
    {"mmio_exits", CUMUL, offsetof(struct abi_vcpu, stat_mmio_exits)},
    {"halt_exits", CUMUL, offsetof(struct abi_vcpu, stat_halt_exits)},
    {"signal_exits", CUMUL, offsetof(struct abi_vcpu, stat_signal_exits)},
    {"msr_user_exits", CUMUL, offsetof(struct abi_vcpu, stat_msr_exits)},
};

static const char *const vm_stats[] = {"vcpus", "memslot_pages"};

static size_t layout(unsigned ndesc, size_t *desc_off, size_t *data_off)
{
    *desc_off = sizeof(struct kvm_stats_header) + NAME_SIZE;
    *data_off = *desc_off + ndesc * (sizeof(struct kvm_stats_desc) + NAME_SIZE);
    return *data_off + ndesc * sizeof(uint64_t);
}

static void values(struct abi_vm *vm, struct abi_vcpu *v, uint64_t *out, unsigned n)
{
    if (v) {
        for (unsigned i = 0; i < n; i++)
            memcpy(&out[i], (const char *)v + vcpu_stats[i].offset, sizeof(uint64_t));
        return;
    }
    out[0] = vm->nvcpus;
    uint64_t pages = 0;
    for (unsigned i = 0; i < vm->as[0].slot_hi; i++)
        if (vm->as[0].slots[i].used)
            pages += vm->as[0].slots[i].size / ABI_PAGE_SIZE;
    out[1] = pages;
}

long abi_stats_fd(struct abi_vm *vm, struct abi_vcpu *v)
{
    unsigned n = v ? sizeof vcpu_stats / sizeof vcpu_stats[0] : sizeof vm_stats / sizeof vm_stats[0];
    size_t desc_off, data_off;
    size_t total = layout(n, &desc_off, &data_off);
    uint8_t *buf = calloc(1, total);
    if (!buf)
        return -ENOMEM;
    struct kvm_stats_header h = {.flags = 0,
                                 .name_size = NAME_SIZE,
                                 .num_desc = n,
                                 .id_offset = sizeof h,
                                 .desc_offset = (uint32_t)desc_off,
                                 .data_offset = (uint32_t)data_off};
    memcpy(buf, &h, sizeof h);
    if (v)
        snprintf((char *)buf + sizeof h, NAME_SIZE, "kvm-%d/vcpu-%u", getpid(), v->id);
    else
        snprintf((char *)buf + sizeof h, NAME_SIZE, "kvm-%d", getpid());
    for (unsigned i = 0; i < n; i++) {
        struct kvm_stats_desc *d =
            (struct kvm_stats_desc *)(buf + desc_off + i * (sizeof *d + NAME_SIZE));
        d->flags = CUMUL;
        if (!v)
            d->flags = KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10;
        d->exponent = 0;
        d->size = 1;
        d->offset = i * sizeof(uint64_t);
        d->bucket_size = 0;
        snprintf(d->name, NAME_SIZE, "%s", v ? vcpu_stats[i].name : vm_stats[i]);
    }
    pthread_mutex_lock(&vm->lock);
    values(vm, v, (uint64_t *)(buf + data_off), n);
    pthread_mutex_unlock(&vm->lock);
    int fd = abi_memfd("kvm-stats", 0, O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return fd;
    }
    long r = fd;
    if (pwrite(fd, buf, total, 0) != (ssize_t)total) {
        close(fd);
        r = -EIO;
    } else {
        /* KVM's stats fd is read-only */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int ro = open(path, O_RDONLY | O_CLOEXEC);
        close(fd);
        r = ro < 0 ? -errno : ro;
    }
    free(buf);
    return r;
}
