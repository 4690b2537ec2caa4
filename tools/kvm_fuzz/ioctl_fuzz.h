/* kvm-fuzz: the ioctl fuzzer's state, table and argument shapes (ioctl_fuzz.c,
 * ioctl_table.c, shapes.c). */
#ifndef KVM_FUZZ_IOCTL_H
#define KVM_FUZZ_IOCTL_H

#include <linux/kvm.h>

#include "abi/kvm_compat.h"
#include "tools/kvm_fuzz/fuzz.h"

/* 6.8+ ioctls missing from Debian 12's header (layouts: include/uapi/linux/kvm.h 6.12) */
#define FZ_CREATE_GUEST_MEMFD _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0xd4, 64)
#define FZ_SET_MEMORY_ATTRIBUTES _IOC(_IOC_WRITE, KVMIO, 0xd2, 32)
#define FZ_PRE_FAULT_MEMORY _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0xd5, 64)

enum fz_fdk { K_SYS, K_VM, K_VCPU, K_NKINDS };
#define F_SYS (1u << K_SYS)
#define F_VM (1u << K_VM)
#define F_VCPU (1u << K_VCPU)

#define POOL_SYS 2
#define POOL_VM 2
#define POOL_VCPU 4
#define ARENA_PAGES 64   /* room for the largest argument (4096 GSI routes) */
#define GPOOL_PAGES 64   /* host memory that memory slots point into */
#define GPOOL_HOLE 40    /* pages [40, 48) of it are PROT_NONE: a bad page inside a slot */

struct fz_vcpu {
    int fd;
    struct kvm_run *run; /* our mapping of its kvm_run page, or NULL */
};

struct fz_state {
    struct fz_rng rng;
    int sys[POOL_SYS], vm[POOL_VM];
    struct fz_vcpu vcpu[POOL_VCPU];
    long mmap_size;   /* KVM_GET_VCPU_MMAP_SIZE */
    int efd, efd2;    /* eventfds for KVM_IRQFD / KVM_IOEVENTFD */
    int nullfd;       /* an fd that is no eventfd */
    uint8_t *arena;   /* ARENA_PAGES, guarded: the ioctl argument */
    uint8_t *arena2;  /* ARENA_PAGES, guarded: what the argument points to */
    uint8_t *ro;      /* 16 read-only pages, guarded */
    uint8_t *protnone;/* one PROT_NONE page */
    uint8_t *gpool;   /* GPOOL_PAGES for memory slots */
    uint8_t tmp[ARENA_PAGES * 4096];
    char args[160];   /* the argument summary of the call being built */
};

/* The argument of one call: an integer, or a pointer whose target a shape fills. */
enum fz_argk { A_INT, A_PTR };
typedef size_t (*fz_shape_fn)(struct fz_state *f, uint8_t *buf, size_t cap);
typedef uint64_t (*fz_int_fn)(struct fz_state *f);

struct fz_ioctl {
    const char *name;
    unsigned long req;
    unsigned kinds; /* the fd kinds it belongs to */
    enum fz_argk argk;
    fz_shape_fn shape; /* A_PTR: fills buf, returns the length; NULL: random bytes */
    fz_int_fn intarg;  /* A_INT: the value; NULL: mostly 0 */
};
extern const struct fz_ioctl fz_ioctls[];
extern const unsigned fz_nioctls;

/* shapes.c: pointer classes for pointers inside arguments (bitmaps, nested buffers) */
uint64_t fz_nested_ptr(struct fz_state *f, size_t len, const char *what);
void fz_argf(struct fz_state *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fz_pick_fd(struct fz_state *f); /* an fd for irqfd/ioeventfd fields */

#define SHAPE(name) size_t shape_##name(struct fz_state *f, uint8_t *buf, size_t cap)
#define INTARG(name) uint64_t int_##name(struct fz_state *f)
SHAPE(msr_list); SHAPE(cpuid2); SHAPE(cpuid1); SHAPE(msrs); SHAPE(region); SHAPE(region2);
SHAPE(dirty_log); SHAPE(clear_dirty_log); SHAPE(enable_cap); SHAPE(msr_filter);
SHAPE(irq_level); SHAPE(irqchip); SHAPE(gsi_routing); SHAPE(msi); SHAPE(pit_config);
SHAPE(clock); SHAPE(ioeventfd); SHAPE(irqfd); SHAPE(zone); SHAPE(sregs); SHAPE(sregs2);
SHAPE(events); SHAPE(mp_state); SHAPE(nested); SHAPE(guest_debug); SHAPE(sigmask);
SHAPE(device_attr); SHAPE(xsave); SHAPE(xcrs); SHAPE(debugregs); SHAPE(mce); SHAPE(u64);
SHAPE(translation); SHAPE(interrupt); SHAPE(tpr); SHAPE(create_device); SHAPE(regs);
SHAPE(reinject); SHAPE(guest_memfd); SHAPE(pmu_filter); SHAPE(lapic);
INTARG(vm_type); INTARG(cap); INTARG(vcpu_id); INTARG(tss); INTARG(boot_id); INTARG(any);

#endif
