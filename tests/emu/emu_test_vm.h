/* tests/emu: a tiny guest environment for emu/ unit tests: RAM, identity-mapped
 * page tables, GDT with flat code/data + TSS, an IDT whose vector n points at a
 * 16-byte stub `hlt` at STUB_BASE + 16*n (so the halted RIP tells the vector). */
#ifndef SOFTKVM_TESTS_EMU_TEST_VM_H
#define SOFTKVM_TESTS_EMU_TEST_VM_H

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "emu/emu.h"

#define TVM_RAM (16u << 20)
#define TVM_PML4 0x1000
#define TVM_PDPT 0x2000
#define TVM_PD 0x3000     /* 2M pages for 0..1G except the first 2M */
#define TVM_PT 0x4000     /* 4K page table for the first 2M */
#define TVM_GDT 0x6000
#define TVM_IDT 0x7000
#define TVM_TSS 0x8000
#define TVM_STUB 0x9000   /* 256 stubs of 16 bytes: 0x9000..0x9fff */
#define TVM_CODE 0x100000
#define TVM_DATA 0x200000
#define TVM_STACK 0x300000
#define TVM_IST_STACK 0x380000

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_UCODE64 0x2b /* 0x28 | 3 */
#define SEL_UDATA 0x33   /* 0x30 | 3 */
#define SEL_TSS 0x40
#define SEL_CODE16 0x50

struct tvm {
    struct emu_physmem pm;
    struct emu_slot slot_store[4]; /* pm.slots: gpa-sorted */
    uint8_t *ram;
    struct emu_vcpu *v;
    struct cpu *c;
};

static inline void tvm_w64(struct tvm *t, uint64_t gpa, uint64_t val) { memcpy(t->ram + gpa, &val, 8); }
static inline uint64_t tvm_r64(struct tvm *t, uint64_t gpa) { uint64_t v; memcpy(&v, t->ram + gpa, 8); return v; }

static inline uint64_t tvm_seg_desc(uint32_t base, uint32_t limit, unsigned type, unsigned s,
                                    unsigned dpl, unsigned l, unsigned db, unsigned g)
{
    return (limit & 0xffffull) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)type << 40) |
           ((uint64_t)s << 44) | ((uint64_t)dpl << 45) | (1ull << 47) |
           ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)l << 53) | ((uint64_t)db << 54) |
           ((uint64_t)g << 55) | ((uint64_t)(base >> 24) << 56);
}

static inline void tvm_set_seg(struct emu_segment *s, uint16_t sel, unsigned type, unsigned dpl,
                               unsigned l, unsigned db)
{
    memset(s, 0, sizeof *s);
    s->selector = sel;
    s->limit = 0xffffffff;
    s->type = (uint8_t)type;
    s->present = 1;
    s->s = 1;
    s->dpl = (uint8_t)dpl;
    s->l = (uint8_t)l;
    s->db = (uint8_t)db;
    s->g = 1;
}

/* Build a 64-bit long-mode guest at CPL 0 with RIP = TVM_CODE. */
static inline void tvm_init64(struct tvm *t)
{
    memset(t, 0, sizeof *t);
    t->ram = mmap(NULL, TVM_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t->pm.slots = t->slot_store;
    t->pm.slots[0].gpa = 0;
    t->pm.slots[0].size = TVM_RAM;
    t->pm.slots[0].host = t->ram;
    t->pm.nslots = 1;
    /* page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD[0] -> PT (4K), PD[1..] 2M pages */
    tvm_w64(t, TVM_PML4, TVM_PDPT | 7);
    tvm_w64(t, TVM_PDPT, TVM_PD | 7);
    tvm_w64(t, TVM_PD, TVM_PT | 7);
    for (unsigned i = 1; i < 512; i++)
        tvm_w64(t, TVM_PD + i * 8, ((uint64_t)i << 21) | 0x87);
    for (unsigned i = 0; i < 512; i++)
        tvm_w64(t, TVM_PT + i * 8, ((uint64_t)i << 12) | 7);
    /* GDT */
    tvm_w64(t, TVM_GDT + 0x08, tvm_seg_desc(0, 0xfffff, 0xb, 1, 0, 1, 0, 1));
    tvm_w64(t, TVM_GDT + 0x10, tvm_seg_desc(0, 0xfffff, 0x3, 1, 0, 0, 1, 1));
    tvm_w64(t, TVM_GDT + 0x18, tvm_seg_desc(0, 0xfffff, 0xb, 1, 0, 0, 1, 1));
    tvm_w64(t, TVM_GDT + 0x28, tvm_seg_desc(0, 0xfffff, 0xb, 1, 3, 1, 0, 1));
    tvm_w64(t, TVM_GDT + 0x30, tvm_seg_desc(0, 0xfffff, 0x3, 1, 3, 0, 1, 1));
    tvm_w64(t, TVM_GDT + 0x40, tvm_seg_desc(TVM_TSS, 0x67, 0xb, 0, 0, 0, 0, 0));
    tvm_w64(t, TVM_GDT + 0x48, 0);
    tvm_w64(t, TVM_GDT + 0x50, tvm_seg_desc(0, 0xffff, 0xb, 1, 0, 0, 0, 0));
    /* TSS: RSP0 and IST1 */
    tvm_w64(t, TVM_TSS + 4, TVM_STACK);
    tvm_w64(t, TVM_TSS + 0x24, TVM_IST_STACK);
    memset(t->ram + TVM_TSS + 0x66, 0x68, 1);
    /* IDT: 64-bit interrupt gates to the stubs */
    for (unsigned n = 0; n < 256; n++) {
        uint64_t off = TVM_STUB + n * 16;
        uint64_t lo = (off & 0xffff) | ((uint64_t)SEL_CODE64 << 16) | (0xeull << 40) | (3ull << 45) |
                      (1ull << 47) | ((off >> 16) << 48);
        tvm_w64(t, TVM_IDT + n * 16, lo);
        tvm_w64(t, TVM_IDT + n * 16 + 8, off >> 32);
        t->ram[TVM_STUB + n * 16] = 0xf4; /* hlt */
    }
    t->v = emu_vcpu_create(&t->pm);
    t->c = emu_cpu(t->v);
    struct cpu *c = t->c;
    c->cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
    c->cr3 = TVM_PML4;
    c->cr4 = 0x20 | 0x200 | 0x400 | 0x40000; /* PAE OSFXSR OSXMMEXCPT OSXSAVE */
    c->efer = 0x500 | 0x800 | 1; /* LME LMA NXE SCE */
    tvm_set_seg(&c->seg[EMU_CS], SEL_CODE64, 0xb, 0, 1, 0);
    for (int s = EMU_ES; s <= EMU_GS; s++)
        if (s != EMU_CS)
            tvm_set_seg(&c->seg[s], SEL_DATA, 0x3, 0, 0, 1);
    memset(&c->seg[EMU_TR], 0, sizeof c->seg[EMU_TR]);
    c->seg[EMU_TR].selector = SEL_TSS;
    c->seg[EMU_TR].base = TVM_TSS;
    c->seg[EMU_TR].limit = 0x67;
    c->seg[EMU_TR].type = 0xb;
    c->seg[EMU_TR].present = 1;
    c->seg[EMU_LDTR].unusable = 1;
    c->gdtr.base = TVM_GDT;
    c->gdtr.limit = 0x57;
    c->idtr.base = TVM_IDT;
    c->idtr.limit = 0xfff;
    c->rip = TVM_CODE;
    c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    c->rflags = 2;
    emu_state_changed(t->v);
}

/* 32-bit protected mode without paging (flat CS 0x18 / DS 0x10, CPL 0), IDT of 32-bit
 * interrupt gates at TVM_IDT32 to the same hlt stubs. */
#define TVM_IDT32 0xa000
static inline void tvm_init32(struct tvm *t)
{
    tvm_init64(t);
    struct cpu *c = t->c;
    for (unsigned n = 0; n < 256; n++) {
        uint32_t off = TVM_STUB + n * 16;
        uint64_t g = (off & 0xffff) | ((uint64_t)SEL_CODE32 << 16) | (0xeull << 40) | (1ull << 47) |
                     ((uint64_t)(off >> 16) << 48);
        tvm_w64(t, TVM_IDT32 + n * 8, g);
    }
    c->idtr.base = TVM_IDT32;
    c->idtr.limit = 0x7ff;
    c->efer = 0;
    c->cr0 = 0x11; /* PE ET */
    c->cr4 = 0x600;
    tvm_set_seg(&c->seg[EMU_CS], SEL_CODE32, 0xb, 0, 0, 1);
    emu_state_changed(t->v);
}

static inline void tvm_code(struct tvm *t, const void *code, size_t n)
{
    memcpy(t->ram + TVM_CODE, code, n);
}

static inline void tvm_destroy(struct tvm *t)
{
    emu_vcpu_destroy(t->v);
    munmap(t->ram, TVM_RAM);
}

/* Run until an exit; returns the reason. */
static inline enum emu_exit_reason tvm_run(struct tvm *t, struct emu_exit *x)
{
    emu_run(t->v, x);
    return x->reason;
}

/* Vector whose stub the vCPU halted in (RIP is just past the hlt), or -1. */
static inline int tvm_halted_vector(struct tvm *t)
{
    uint64_t rip = t->c->rip - 1;
    if (rip < TVM_STUB || rip >= TVM_STUB + 4096 || (rip & 15))
        return -1;
    return (int)((rip - TVM_STUB) / 16);
}

#endif
