/* emu/: internals shared by the interpreter core and the instruction handlers.
 *
 * CONTRACT between the emu core (emu/ *.c) and every semantic file, including the
 * simd helper's emu/simd_*.c, emu/x87*.c, emu/xsave*.c. Fields/functions may be
 * added; existing ones keep their meaning.
 *
 * How an instruction runs (emu/run.c):
 *   1. fetch + decode (or hit the decode cache), v->insn_rip = RIP,
 *      v->next_rip = RIP + length;
 *   2. the handler registered for insn->op runs;
 *   3. handler returns EMU_H_NEXT: RIP = v->next_rip (branches just set next_rip);
 *      handler returns EMU_H_EXIT: v->exit was filled, RIP = v->next_rip, emu_run returns.
 *   Faults: any helper (or the handler) calls emu_raise(); it never returns: control
 *   goes back to the run loop (longjmp), RIP stays at the faulting instruction and
 *   the exception is delivered through the IDT. Handlers must therefore read every
 *   operand (and check every fault condition) before writing any architectural state.
 *
 * Registration: each semantic file exports a list terminated by {0, NULL}:
 *     const struct emu_handler_entry emu_alu_handlers[] = { {DOP_ADD, h_add}, ..., {0, NULL} };
 * and emu/dispatch.c merges all lists into a DOP-indexed table once. An op without
 * a handler exits with EMU_EXIT_INTERNAL (KVM_INTERNAL_ERROR_EMULATION).
 */
#ifndef SOFTKVM_EMU_INTERNAL_H
#define SOFTKVM_EMU_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "decoder/decoder.h"
#include "emu/cpu.h"
#include "emu/emu.h"
#include "emu/nested.h"

/* ---------------- handler registration ---------------- */

enum emu_hret {
    EMU_H_NEXT = 0, /* instruction done: commit next_rip, continue */
    EMU_H_EXIT = 1, /* instruction done (or suspended, see next_rip) and v->exit filled: return to caller */
};

struct emu_vcpu;
typedef int emu_handler_fn(struct emu_vcpu *v, const struct decoded_insn *d);

/* The guest's CPUID entry (KVM_SET_CPUID2 table) for leaf fn/subleaf idx, or NULL. */
const struct emu_cpuid_entry *emu_cpuid_find(struct emu_vcpu *v, uint32_t fn, uint32_t idx);
/* Bit `bit` of register `reg` (0 EAX, 1 EBX, 2 ECX, 3 EDX) of the guest's CPUID(fn, idx)
 * as KVM_SET_CPUID2 gave it (KVM guest_cpuid_has); false when the leaf is absent. */
bool emu_cpuid_has(struct emu_vcpu *v, uint32_t fn, uint32_t idx, unsigned reg, unsigned bit);

struct emu_handler_entry {
    uint16_t op; /* enum decoder_op; 0 terminates the list */
    emu_handler_fn *fn;
};

/* Lists merged by emu/dispatch.c (only lists that exist in git are referenced there). */
extern const struct emu_handler_entry emu_alu_handlers[];    /* emu/insn_alu.c */
extern const struct emu_handler_entry emu_muldiv_handlers[]; /* emu/insn_muldiv.c */
extern const struct emu_handler_entry emu_shift_handlers[];  /* emu/insn_shift.c */
extern const struct emu_handler_entry emu_bit_handlers[];    /* emu/insn_bit.c */
extern const struct emu_handler_entry emu_bcd_handlers[];    /* emu/insn_bcd.c */
extern const struct emu_handler_entry emu_mov_handlers[];    /* emu/insn_mov.c */
extern const struct emu_handler_entry emu_stack_handlers[];  /* emu/insn_stack.c */
extern const struct emu_handler_entry emu_branch_handlers[]; /* emu/insn_branch.c */
extern const struct emu_handler_entry emu_string_handlers[]; /* emu/insn_string.c */
extern const struct emu_handler_entry emu_system_handlers[]; /* emu/insn_system.c */
extern const struct emu_handler_entry emu_io_handlers[];     /* emu/insn_io.c */
extern const struct emu_handler_entry emu_svm_handlers[];    /* emu/svm.c */
extern const struct emu_handler_entry emu_vmx_handlers[];    /* emu/vmx.c */
extern const struct emu_handler_entry emu_smm_handlers[];    /* emu/smm.c */

/* emu/smm.c: the SMI step of event injection (true: SMM was entered), and SMM entry. */
bool emu_smm_take_smi(struct emu_vcpu *v);
void emu_smm_enter(struct emu_vcpu *v);

emu_handler_fn *emu_handler_for(uint16_t op);
/* The semantic handler of op from the insn_*.c / simd_*.c lists only (NULL if none):
 * for emu/opcheck, which checks every decoder op has one or is in emu_missing_ops. */
emu_handler_fn *emu_semantic_handler_for(uint16_t op);

/* emu/insn_missing.c: ops without semantics, each with the CPUID bit that gates it
 * (bit 0xff: none). Their handler emu_h_missing raises #UD when the guest's CPUID lacks
 * the bit and ends KVM_RUN with an emulation INTERNAL_ERROR otherwise. */
struct emu_missing_op {
    uint16_t op;
    uint32_t leaf;
    uint8_t reg; /* 0 EAX, 1 EBX, 2 ECX, 3 EDX of CPUID(leaf, 0) */
    uint8_t bit;
};
extern const struct emu_missing_op emu_missing_ops[]; /* ends with op 0 */
bool emu_missing_feature_present(struct emu_vcpu *v, uint16_t op);
int emu_h_missing(struct emu_vcpu *v, const struct decoded_insn *d);
/* CPL-0-only op (checked by the run loop before the handler runs). */
bool emu_op_privileged(uint16_t op);

/* String instructions run at most this many iterations per execution, then restart
 * (RIP unchanged) so interrupts and exits are seen in long REP loops (SDM vol.1 7.3.9.2). */
#define EMU_REP_CHUNK 4096

/* ---------------- exceptions ---------------- */

enum emu_vector {
    EMU_DE = 0, EMU_DB = 1, EMU_NMI = 2, EMU_BP = 3, EMU_OF = 4, EMU_BR = 5, EMU_UD = 6,
    EMU_NM = 7, EMU_DF = 8, EMU_TS = 10, EMU_NP = 11, EMU_SSF = 12, /* #SS (EMU_SS is the segment) */ EMU_GP = 13, EMU_PF = 14,
    EMU_MF = 16, EMU_AC = 17, EMU_MC = 18, EMU_XM = 19, EMU_VE = 20, EMU_CP = 21,
};
#define EMU_NO_ERRCODE 0xffffffffu

/* #PF error code bits (SDM vol.3 4.7) */
#define EMU_PFERR_P (1u << 0)
#define EMU_PFERR_W (1u << 1)
#define EMU_PFERR_U (1u << 2)
#define EMU_PFERR_RSVD (1u << 3)
#define EMU_PFERR_I (1u << 4)
#define EMU_PFERR_PK (1u << 5)

/* THE fault mechanism: abandon the current instruction and deliver `vector`
 * (error_code = EMU_NO_ERRCODE for vectors without one). Never returns. */
_Noreturn void emu_raise(struct emu_vcpu *v, uint8_t vector, uint32_t error_code);
/* #PF with CR2 = lin. */
_Noreturn void emu_raise_pf(struct emu_vcpu *v, uint64_t lin, uint32_t error_code);
/* Abandon the instruction and exit with EMU_EXIT_INTERNAL/KVM_INTERNAL_ERROR_EMULATION
 * (unimplemented form, unsupported combination). Never returns. */
_Noreturn void emu_unimplemented(struct emu_vcpu *v);
/* Abandon the instruction without side effects and return v->exit to the caller; the
 * instruction restarts on the next emu_run (used for MMIO reads). Never returns. */
_Noreturn void emu_suspend(struct emu_vcpu *v);
/* An access to an emu_slot.mem_fault page: KVM_RUN ends with EMU_EXIT_MEMORY_FAULT. */
_Noreturn void emu_memory_fault(struct emu_vcpu *v, uint64_t gpa);

/* Deliver an event through the IDT now (real, protected, long mode). `soft` =
 * INT n / INT3 / INTO (DPL check, RIP after the instruction). Used by the run loop
 * and INT handlers. Double/triple-fault escalation lives here. */
void emu_deliver_event(struct emu_vcpu *v, uint8_t vector, uint32_t error_code, bool soft,
                       uint64_t return_rip);

/* ---------------- memory access ---------------- */

enum emu_access {
    EMU_ACC_READ = 0,
    EMU_ACC_WRITE = 1,
    EMU_ACC_FETCH = 2,
    EMU_ACC_KIND = 3,
    /* implicit supervisor access (GDT/IDT/TSS/LDT), SDM vol.3 4.6: checked as CPL 0 */
    EMU_ACC_SYS = 4,
};

/* Linear-address access through the TLB / page walk; faults via emu_raise.
 * size 1,2,4,8; page-crossing handled. */
uint64_t emu_lin_read(struct emu_vcpu *v, uint64_t lin, unsigned size, unsigned acc);
void emu_lin_write(struct emu_vcpu *v, uint64_t lin, unsigned size, uint64_t val, unsigned acc);
void emu_lin_read_buf(struct emu_vcpu *v, uint64_t lin, void *buf, unsigned len, unsigned acc);
void emu_lin_write_buf(struct emu_vcpu *v, uint64_t lin, const void *buf, unsigned len,
                       unsigned acc);
/* Host pointer for [lin, lin+size) when it lies in one page of RAM (not MMIO / readonly
 * for writes), after all permission checks (faults raised). NULL when the access
 * must go through the slow path (MMIO, page crossing). Used for LOCK atomics. */
void *emu_lin_ptr(struct emu_vcpu *v, uint64_t lin, unsigned size, unsigned acc);

/* Segmented (logical) access: seg 0-5 + offset -> linear with limit/type checks
 * (#GP(0) / #SS(0) per SDM vol.3 5.3; canonical check in 64-bit mode). */
uint64_t emu_seg_lin(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size, unsigned acc);
uint64_t emu_mem_read(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size);
void emu_mem_write(struct emu_vcpu *v, unsigned seg, uint64_t off, unsigned size, uint64_t val);
void emu_mem_read_buf(struct emu_vcpu *v, unsigned seg, uint64_t off, void *buf, unsigned len);
void emu_mem_write_buf(struct emu_vcpu *v, unsigned seg, uint64_t off, const void *buf,
                       unsigned len);

/* Page walk without side effects on failure. Returns 0 and fills *gpa on success,
 * else EMU_WALK_FAIL | the #PF error code (P/W/U/RSVD/I bits), A/D bits untouched. */
#define EMU_WALK_FAIL 0x80000000u
/* ... with EMU_PFERR_RSVD only for address bits between the guest's MAXPHYADDR and
 * policy.tdp_maxphyaddr: under EPT the CPU would not fault, KVM's emulator walks the
 * guest's tables and raises #PF(RSVD) -- or fails on an instruction it lacks
 * (emu_simd_mmio_check). */
#define EMU_WALK_RSVD_TDP 0x40000000u
#define EMU_WALK_PFERR(ec) ((ec) & ~(EMU_WALK_FAIL | EMU_WALK_RSVD_TDP))
uint32_t emu_walk(struct emu_vcpu *v, uint64_t lin, unsigned acc, bool set_ad, uint64_t *gpa,
                  bool *writable, bool *user);
void emu_tlb_flush(struct emu_vcpu *v);
/* Run-loop fetch: host pointer for code at lin (NULL for MMIO; *gpa filled), bytes to page end. */
uint8_t *emu_fetch_ptr(struct emu_vcpu *v, uint64_t lin, unsigned *avail, uint64_t *gpa);
void emu_tlb_flush_page(struct emu_vcpu *v, uint64_t lin);
/* Guest-physical RAM copies (no MMIO); false if [gpa, gpa+len) is not in one RAM slot. */
bool emu_phys_read(struct emu_vcpu *v, uint64_t gpa, void *buf, unsigned len);
/* Copy from a slot's host memory outside emu_run (ioctl paths), where a bad host page
 * cannot be caught by emu_host_fault: false (nothing copied) if it is not readable. */
bool emu_host_read(void *dst, const void *host, size_t len);
bool emu_phys_write(struct emu_vcpu *v, uint64_t gpa, const void *buf, unsigned len);
/* PAE PDPTEs from cr3 into cpu.pdptrs; false (nothing loaded) if unreadable or reserved
 * bits are set (SDM vol.3 4.4.1). */
bool emu_try_load_pdptrs(struct emu_vcpu *v, uint64_t cr3);

/* ---------------- operands ---------------- */

/* Effective address (offset within the segment) of memory operand i, wrapped to addrsize
 * (inline below, after struct emu_vcpu). */
static inline uint64_t emu_opnd_ea(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i);
/* Value of operand i (reg/mem, <= 8 bytes) zero-extended from its size; for IMM/REL the
 * decoder's already sign/zero-extended 64-bit value (mask it to the operation size). */
uint64_t emu_opnd_read(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i);
/* Write operand i (reg/mem, <= 8 bytes). 32-bit GPR writes zero bits 63:32. */
void emu_opnd_write(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i, uint64_t val);
/* Host pointer for a memory operand when it can be accessed atomically (NULL: use
 * read/write). Performs the write-permission checks. */
void *emu_opnd_ptr(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i);

uint64_t emu_gpr_read(struct emu_vcpu *v, unsigned reg, unsigned size);
void emu_gpr_write(struct emu_vcpu *v, unsigned reg, unsigned size, uint64_t val);

static inline uint64_t emu_mask(unsigned size)
{
    return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}
static inline int64_t emu_sext(uint64_t v, unsigned size)
{
    unsigned sh = 64 - size * 8;
    return size >= 8 ? (int64_t)v : (int64_t)(v << sh) >> sh;
}

/* Canonical 48-bit linear address (SDM vol.1 3.3.7.1). */
static inline bool emu_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* Stack (SS, size 2/4/8, address size from SS.B / 64-bit mode). */
void emu_push(struct emu_vcpu *v, uint64_t val, unsigned size);
uint64_t emu_pop(struct emu_vcpu *v, unsigned size);
unsigned emu_stack_addrsize(struct emu_vcpu *v);

/* ---------------- lazy flags ---------------- */

/* Arithmetic kinds whose flags are computed on demand (SDM vol.1 appendix A). */
enum emu_lf_op {
    EMU_LF_NONE = 0, /* flags are all in cpu.rflags */
    EMU_LF_ADD, EMU_LF_ADC, EMU_LF_SUB, EMU_LF_SBB, EMU_LF_LOGIC, EMU_LF_INC, EMU_LF_DEC,
    EMU_LF_NEG,
    /* SF ZF PF from the result, CF = cf_in bit 0, OF = cf_in bit 1, AF clear: shifts and
     * IMUL, whose CF/OF are not a function of the result (emu/fast.c) */
    EMU_LF_CO,
};

struct emu_lazy {
    uint8_t op;   /* enum emu_lf_op */
    uint8_t size; /* 1,2,4,8 */
    uint8_t cf_in; /* ADC/SBB carry-in; INC/DEC preserved CF */
    uint64_t res, a, b; /* result and operands, masked to size */
};

/* Record the flags of an arithmetic result (OF SF ZF AF PF CF) lazily. */
static inline void emu_lf_set(struct emu_vcpu *v, unsigned op, unsigned size, uint64_t res,
                              uint64_t a, uint64_t b);
/* Materialized RFLAGS / write of the arithmetic bits. */
uint64_t emu_flags(struct emu_vcpu *v);
void emu_flags_set(struct emu_vcpu *v, uint64_t rflags); /* whole RFLAGS (status bits + system) */
/* Replace only the status flags selected by mask (OF SF ZF AF PF CF subset). */
void emu_flags_update(struct emu_vcpu *v, uint64_t mask, uint64_t values);
bool emu_cf(struct emu_vcpu *v);
/* Jcc/SETcc/CMOVcc condition 0-15 (SDM vol.1 appendix B). */
bool emu_cond(struct emu_vcpu *v, unsigned cc);
/* PF: even number of set bits in the low byte. Inline: every flag computation uses it. */
static inline uint8_t emu_parity(uint8_t b)
{
    return !__builtin_parity(b);
}

/* ---------------- block cache (emu/block.c) ---------------- */

/* Pre-decoded basic blocks: the run loop pays the lookup, the guest-byte validation and
 * the attention checks once per block, not per instruction (see emu/README.md "Blocks").
 * A block lies in one guest page and ends after a branch / DFLAG_ENDS_BLOCK instruction,
 * before an instruction that crosses the page, or after EMU_BLOCK_MAX instructions. */
#define EMU_BLOCK_MAX 64
struct emu_binsn {
    emu_handler_fn *fn; /* resolved at translation (emu_handler_for or its emu/fast.c form;
                         * emu_h_invalid for bad forms, emu_h_priv for CPL-0-only ones) */
    emu_handler_fn *real; /* for emu_h_priv: the handler after the CPL check */
    uint16_t off;       /* byte offset of the instruction within the block */
    bool priv;          /* emu_op_privileged(d.op): #GP(0) at CPL > 0 */
    struct decoded_insn d;
};
struct emu_block {
    uint64_t gpa;     /* guest-physical address of the first byte */
    uint8_t mode;     /* enum decoder_mode the block was decoded in */
    uint16_t n;       /* instructions */
    uint16_t nbytes;  /* guest bytes covered */
    bool serial;      /* holds a serializing instruction: a new code epoch after it */
    uint64_t epoch;   /* code epoch in which the bytes were last known equal (emu/block.c) */
    const uint8_t *bytes; /* copy of those bytes: the block is valid while memory holds them */
    const uint8_t *host;  /* host address of the first byte (slot memory) */
    /* chaining: the blocks that ran next (by start RIP), valid while chain_gen is
     * unchanged (no TLB flush, mode change or cache recycling since) */
    struct emu_block *succ[2];
    uint64_t succ_rip[2];
    uint64_t succ_gen[2];
    struct emu_binsn ins[];
};
struct emu_bcache;

/* The block starting at h (host pointer of the code at gpa, avail bytes to the page end),
 * translated if needed; NULL if no instruction starts a block there (page-crossing first
 * instruction: the caller takes the single-instruction path). */
struct emu_block *emu_block_get(struct emu_vcpu *v, const uint8_t *h, unsigned avail,
                                      uint64_t gpa);
bool emu_block_cache_alloc(struct emu_vcpu *v);
void emu_block_cache_free(struct emu_vcpu *v);
void emu_block_cache_flush(struct emu_vcpu *v);
/* #GP(0) above CPL 0, else the record's `real` handler. */
int emu_h_priv(struct emu_vcpu *v, const struct decoded_insn *d);
/* The operand-shape specialised handler for d's form (emu/fast.c), else `generic`. */
emu_handler_fn *emu_fast_handler(const struct decoded_insn *d, emu_handler_fn *generic);
/* Handler of a record whose decode failed or has no handler: raises what the run loop
 * would (#UD, #GP for > 15 bytes, KVM_INTERNAL_ERROR_EMULATION). */
int emu_h_invalid(struct emu_vcpu *v, const struct decoded_insn *d);
/* An own store is about to go to host page host_page (no write TLB entry yet): true if
 * the page held blocks, which now need revalidation (self-modifying code, SDM vol.3
 * 11.6); the page must then not get a write TLB entry for this store. */
bool emu_code_store(struct emu_vcpu *v, const uint8_t *host_page);

/* ---------------- TLB ---------------- */

#define EMU_TLB_SIZE 256
struct emu_tlb_entry {
    uint64_t tag;   /* linear page number | 1 (valid); 0 = invalid */
    uint8_t *host;  /* host address of the page */
    uint64_t gpa;   /* guest-physical page address */
};
/* One array per access kind and privilege (read/write/fetch x supervisor/user): an entry
 * exists only after a full walk for exactly that access succeeded (A/D already set). */
enum { EMU_TLB_KINDS = 6 };

/* ---------------- the vCPU ---------------- */

enum emu_pending {
    EMU_PEND_NONE = 0,
    EMU_PEND_IO_IN,      /* IN/INS waiting for emu_complete_io */
    EMU_PEND_MMIO_READ,  /* instruction restarts; the read is answered from mmio_rd */
    EMU_PEND_MSR_READ,   /* RDMSR waiting for emu_complete_msr */
    EMU_PEND_MSR_WRITE,
};

/* One MMIO exit's worth of an access (at most 8 bytes, as KVM's fragments). */
struct emu_mmio_piece {
    uint64_t gpa;
    uint8_t len;
    uint8_t data[8];
};
#define EMU_MMIO_PIECES 8 /* reads per instruction: two MMIO operands, each up to 16 bytes across a page */
/* write pieces per instruction: a REP INS batch to MMIO is one write of up to KVM's
 * 1024-byte read-ahead buffer (emulate.c pio_in_emulated, kvm_emulate.h read_cache) */
#define EMU_MMIO_WPIECES 128

struct emu_vcpu {
    struct cpu cpu;
    /* the address space the vCPU sees now: pm_as[1] in SMM when the layer above gave one
     * (emu_set_smm_physmem; KVM kvm_arch_vcpu_memslots_id), else pm_as[0]. Every memslot
     * generation is counted in pm_as[0]->generation. */
    struct emu_physmem *pm;
    struct emu_physmem *pm_as[2];
    uint64_t pm_gen;

    struct emu_msr_ops msr_ops;
    bool has_msr_ops;
    struct emu_hv_ops hv_ops; /* zero: no Hyper-V */
    struct emu_irq_ops irq_ops;
    bool has_irq_ops;
    struct emu_cpuid_entry *cpuid;
    unsigned ncpuid;
    bool cpu_amd; /* CPUID leaf 0 says AuthenticAMD (vendor-specific architectural details) */
    struct emu_kvm_policy policy; /* emu_set_kvm_policy: KVM's flavour/quirk decisions */

    struct emu_lazy lf;

    /* current instruction */
    uint64_t insn_rip;
    uint64_t next_rip;
    const struct decoded_insn *insn;
    struct decoded_insn scratch; /* decode of an uncacheable (page-crossing / MMIO) insn */
    uint64_t pending_next_rip;   /* RIP after the instruction whose exit is pending */
    uint8_t pending_insn_len;
    uint8_t insn_bytes[16];
    uint8_t insn_len;
    enum decoder_mode mode; /* decoder mode of CS */
    bool long_mode;         /* EFER.LMA */

    /* fault transport */
    jmp_buf jb;
    uint8_t fault_vector;
    uint32_t fault_error;
    uint8_t fault_kind; /* EMU_FK_* (emu/nested.h): exception, internal error, suspend-with-exit,
                         * host fault, VM exit into L1 */
    bool fault_has_cr2; /* #PF: CR2 is written when the fault is delivered, not raised
                         * (an L1 intercepting #PF gets the address in EXITINFO2 instead) */
    uint64_t fault_cr2;
    bool delivering;    /* inside event delivery: nested fault -> #DF / triple fault */
    uint8_t delivering_vector;

    /* exit in progress */
    struct emu_exit *exit;
    bool exit_ready;
    enum emu_pending pending;
    uint8_t io_in_reg_size;
    uint32_t io_count;  /* elements of the pending IN/INS */
    bool io_string;     /* pending IN is an INS */
    bool io_mmio_dst;   /* ... whose destination is MMIO: its batch is one write */
    /* MMIO (emu/mem.c). KVM exits once per piece of at most 8 bytes (x86.c
     * emulator_read_write_onepage / complete_emulated_mmio: a 16-byte SSE access is two
     * exits). A read suspends the instruction; the answers it got so far are kept in
     * order (KVM's emulator read cache, emulate.c read_emulated / ctxt->mem_read) and
     * served when it restarts, so an instruction with several MMIO reads (CMPS between
     * two MMIO buffers) asks for each once. They belong to the instruction at mmio_rip
     * alone: it restarts before anything else (mmio_replay, run.c replay_mmio_insn) and
     * they are dropped when it completes, faults or is not the one that runs. */
    struct emu_mmio_piece mmio_rd[EMU_MMIO_PIECES];
    uint8_t mmio_nrd, mmio_rdpos; /* answers kept; the next one this run reads */
    bool mmio_replay;             /* the instruction at mmio_rip restarts with them */
    uint64_t mmio_rip;
    uint64_t mmio_gpa; /* the piece the VMM is asked for */
    uint8_t mmio_len;
    /* the write pieces after the first, reported one per emu_run before the guest goes
     * on (KVM complete_emulated_mmio returns to user space for each) */
    struct emu_mmio_piece mmio_wr[EMU_MMIO_WPIECES];
    uint8_t mmio_nwr, mmio_wrpos;
    uint64_t mmio_wrip;
    uint8_t io_data[4096];

    bool in_run; /* inside emu_run: the fault jmp_buf is live */
    /* Nonzero from the first write to a dirty-logged page until emu_run returns: with
     * icount, what emu_dirty_log_sync waits on (see there). Written by the vCPU thread. */
    uint32_t dirty_busy;
    volatile int stop_req;
    volatile int kick;

    struct emu_tlb_entry tlb[EMU_TLB_KINDS][EMU_TLB_SIZE];
    /* last code page used for fetch (lin page | cpl<<1 | 1 tag, host page, gpa page);
     * dropped with the TLB */
    uint64_t fetch_tag;
    uint8_t *fetch_host;
    uint64_t fetch_gpa;
    struct emu_bcache *bcache;
    /* the block executing now: its host code page and byte range in it (SMC watch) */
    const struct emu_block *blk;
    const uint8_t *code_page;
    uint64_t code_epoch; /* see emu/block.c: blocks of older epochs are revalidated */
    uint64_t chain_gen;  /* bumped when block chains may no longer hold (emu/block.c) */
    /* set by anything that invalidates the rest of the running block (mode or paging
     * change, TLB flush, store into its bytes): the loop leaves the block after the
     * current instruction */
    bool blk_break;

    uint64_t icount;      /* instructions retired (bench/statistics) */
    uint64_t ple_last;    /* pause-loop exiting: icount at the last PAUSE, PAUSEs in a row */
    unsigned ple_count;
    uint64_t ple_yields;  /* times a PAUSE loop gave the host CPU away (tests) */
    /* KVM_SET_GUEST_DEBUG (emu/debug.c) */
    uint32_t dbg_control;   /* KVM_GUESTDBG_* */
    uint64_t dbg_regs[8];   /* debugreg[0..3] addresses, [7] DR7-format control */
    uint64_t dbg_skip_rip;  /* resume after an exec-breakpoint exit without re-triggering */
    bool dbg_skip;
    /* SYSCALL / SYSRET ended with RFLAGS.TF = 1: the single-step trap follows the TF they
     * leave, not the one they found (KVM em_syscall sets ctxt->tf after SFMASK;
     * kvm-unit-tests x86/syscall "syscall TF handling"); taken by the run loop */
    bool tf_trap_after;
    /* a breakpoint is armed (the VMM's data breakpoints, or any of the guest's DR7
     * breakpoints): memory accesses are checked and blocks run through step_one */
    bool dbg_data;
    bool dbg_vmm_data;      /* the VMM's KVM_GUESTDBG_USE_HW_BP has a data breakpoint */
    uint8_t dbg_gexec;      /* guest DR7: enabled instruction breakpoints (bit i = DRi) */
    uint8_t dbg_data_hit;   /* DR6.B0-3 of the VMM's data breakpoints hit by this instruction */
    uint8_t dbg_gdata_hit;  /* DR6.B0-3 of the guest's data breakpoints hit by this instruction */
    /* #DB trap conditions (DR6 payload: B0-3, BS) held back by the MOV SS / POP SS
     * shadow, delivered after the next instruction (SDM vol.3 6.8.3) */
    uint64_t dbg_pending;
    /* KVM_GUESTDBG_SINGLESTEP over an instruction that exited to user space (I/O, MMIO
     * write, MSR): the debug exit comes at the next emu_run, once it completed */
    bool dbg_step_exit;
    struct emu_nested nested; /* emu/nested.h: L1/L2 state of nested virtualization */
    uint64_t insn_limit;  /* != 0: emu_run returns EMU_EXIT_INTERRUPTED once icount reaches it
                           * (single-stepping for differential tests) */
    /* vPMU support (emu/pmu.c): stop point for ops.event (0 none), precise mode (blocks
     * run through step_one, memory accesses noted in pmu_acc), per-class counts */
    uint64_t pmu_stop;
    /* what the run loop checks once per block: the nearer nonzero of insn_limit and
     * pmu_stop (emu_update_stop_at), so neither costs more than the other alone */
    uint64_t stop_at;
    bool pmu_precise, pmu_watch, pmu_fire;
    uint8_t pmu_acc; /* bit 0 read, bit 1 write: data accesses of the current instruction */
    struct emu_pmu_counts pmu_counts;
    struct emu_pmu_ops pmu_ops;
};

/* MMIO answers (emu/mem.c): dropped when the instruction they belong to is over */
void emu_mmio_drop(struct emu_vcpu *v);
/* Checks that lin..lin+size-1 may be written (#PF otherwise) without touching it; true
 * if it is RAM. */
bool emu_lin_probe_write(struct emu_vcpu *v, uint64_t lin, unsigned size);
/* Fills v->exit with the next write piece still to report; false if none is left. */
bool emu_mmio_next_write(struct emu_vcpu *v);
/* A REP string op finished an element: the answers of its reads are used up (KVM resets
 * its read cache per iteration, emulate.c x86_emulate_insn "Reset read cache"), so the
 * next element asks again. */
static inline void emu_mmio_element_done(struct emu_vcpu *v)
{
    if (__builtin_expect(v->mmio_nrd != 0, 0))
        v->mmio_nrd = v->mmio_rdpos = 0;
}

/* ---------------- nested virtualization intercepts (emu/nested.h) ----------------
 * Called by sensitive handlers before their semantics; a no-op unless L2 runs. */
static inline void emu_icpt_insn(struct emu_vcpu *v, enum emu_nx_insn which, uint64_t info)
{
    if (__builtin_expect(v->nested.guest_mode, 0))
        v->nested.ops->insn(v, which, info);
}
static inline void emu_icpt_msr(struct emu_vcpu *v, uint32_t index, bool write)
{
    if (__builtin_expect(v->nested.guest_mode, 0))
        v->nested.ops->msr(v, index, write);
}
static inline void emu_icpt_io(struct emu_vcpu *v, const struct emu_nx_io *io)
{
    if (__builtin_expect(v->nested.guest_mode, 0))
        v->nested.ops->io(v, io);
}
static inline void emu_icpt_cr(struct emu_vcpu *v, unsigned cr, bool write)
{
    if (__builtin_expect(v->nested.guest_mode, 0))
        v->nested.ops->cr(v, cr, write);
}
static inline void emu_icpt_dr(struct emu_vcpu *v, unsigned dr, bool write)
{
    if (__builtin_expect(v->nested.guest_mode, 0))
        v->nested.ops->dr(v, dr, write);
}
/* L2-physical -> L1-physical (nested.h tdp); true = *gpa is the address to use */
static inline bool emu_nested_tdp(struct emu_vcpu *v, uint64_t *gpa, unsigned acc, uint64_t lin,
                                  bool final)
{
    if (__builtin_expect(v->nested.guest_mode, 0) && v->nested.ops->tdp)
        return v->nested.ops->tdp(v, gpa, acc, lin, final);
    return true;
}
/* CR values as L2 sees / leaves them (nested.h cr_read / cr_write) */
static inline uint64_t emu_nested_cr_read(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    if (__builtin_expect(v->nested.guest_mode, 0) && v->nested.ops->cr_read)
        return v->nested.ops->cr_read(v, cr, val);
    return val;
}
static inline uint64_t emu_nested_cr_write(struct emu_vcpu *v, unsigned cr, uint64_t val)
{
    if (__builtin_expect(v->nested.guest_mode, 0) && v->nested.ops->cr_write)
        return v->nested.ops->cr_write(v, cr, val);
    return val;
}

/* Debug (emu/debug.c): guest-debug exits (single-step, INT3, execution breakpoints) and
 * the guest's own single-step trap (EFLAGS.TF, SDM vol.3 18.3.1.4). */
bool emu_debug_before(struct emu_vcpu *v, uint64_t lin_rip);
bool emu_debug_int3_exit(struct emu_vcpu *v);
void emu_debug_after(struct emu_vcpu *v, bool tf_before, bool was_soft_int, bool movss);
static inline void emu_update_stop_at(struct emu_vcpu *v)
{
    uint64_t a = v->insn_limit, b = v->pmu_stop;
    v->stop_at = !a ? b : !b ? a : a < b ? a : b;
}

/* emu/pmu.c: a precise instruction retired (d ran at CPL `cpl`); the stop point fired */
void emu_pmu_account(struct emu_vcpu *v, const struct decoded_insn *d, unsigned cpl);
void emu_pmu_fire(struct emu_vcpu *v);

/* Recompute dbg_data / dbg_gexec after DR7, DR0-3 or KVM_SET_GUEST_DEBUG changed. */
void emu_debug_update(struct emu_vcpu *v);
/* The held KVM_GUESTDBG_SINGLESTEP exit (dbg_step_exit): true if it filled the exit. */
bool emu_debug_step_exit(struct emu_vcpu *v);
/* The guest's instruction breakpoints at linear address lin (RF clear): #DB fault. */
void emu_debug_exec_check(struct emu_vcpu *v, uint64_t lin);
/* A #DB exception with payload (DR6 B0-3 replaced, other bits set; KVM
 * kvm_deliver_exception_payload) is about to be delivered: DR6 and DR7.GD. */
void emu_debug_db_payload(struct emu_vcpu *v, uint64_t payload);
/* The guest's single-step #DB trap (DR6.BS) at the current RIP, through its IDT. */
void emu_debug_tf_trap(struct emu_vcpu *v);
/* Data breakpoint check of one access (only called when v->dbg_data). */
void emu_debug_data(struct emu_vcpu *v, uint64_t lin, unsigned size, bool write);
/* MOV DRn with DR7.GD set (VMM's or guest's): exits or raises #DB; true if it did not return. */
void emu_debug_gd_check(struct emu_vcpu *v);

/* Recompute mode caches (decoder mode, CPL, long mode) after CR0/EFER/CS changes. */
void emu_update_mode(struct emu_vcpu *v);
/* Load a segment register in the current mode (real: base = sel<<4; protected: from
 * GDT/LDT with checks, SDM vol.3 5.4-5.6). Faults via emu_raise. */
void emu_load_seg(struct emu_vcpu *v, unsigned seg, uint16_t sel);
/* Read the 8-byte (or 16 for system descriptors in long mode) descriptor of sel. */
bool emu_read_desc(struct emu_vcpu *v, uint16_t sel, uint64_t desc[2], bool sys16);
void emu_desc_to_seg(const uint64_t desc, uint16_t sel, struct emu_segment *s);

/* CR writes with all their consequences (TLB flushes, mode). Faults via emu_raise. */
void emu_write_cr(struct emu_vcpu *v, unsigned cr, uint64_t val);
uint64_t emu_read_tsc(struct emu_vcpu *v);
uint64_t emu_read_l1_tsc(struct emu_vcpu *v);
/* Drop the TLB and revalidate every block before it runs again (memslot change). */
void emu_flush_caches(struct emu_vcpu *v);

/* base + index * scale + displacement, before the address-size mask (the 64-bit fast
 * forms, whose address size is 8, use it as is) */
static inline uint64_t emu_opnd_ea_raw(const struct emu_vcpu *v, const struct decoder_operand *o)
{
    uint64_t ea = (uint64_t)o->disp;
    if (o->base == DECODER_BASE_RIP)
        ea += v->next_rip;
    else if (o->base != DECODER_NO_REG)
        ea += v->cpu.gpr[o->base];
    if (o->index != DECODER_NO_REG)
        ea += v->cpu.gpr[o->index] * o->scale;
    return ea;
}

static inline uint64_t emu_opnd_ea(struct emu_vcpu *v, const struct decoded_insn *d, unsigned i)
{
    return emu_opnd_ea_raw(v, &d->ops[i]) & emu_mask(d->addrsize);
}

/* ---------------- inline lazy-flag recording ---------------- */
static inline void emu_lf_set(struct emu_vcpu *v, unsigned op, unsigned size, uint64_t res,
                              uint64_t a, uint64_t b)
{
    v->lf.op = (uint8_t)op;
    v->lf.size = (uint8_t)size;
    v->lf.res = res & emu_mask(size);
    v->lf.a = a & emu_mask(size);
    v->lf.b = b & emu_mask(size);
}

#endif
