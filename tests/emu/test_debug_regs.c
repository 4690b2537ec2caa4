/* tests/emu: the guest's own debug registers (kvm-unit-tests x86/debug; SDM vol.3 ch.17/18,
 * Linux 6.12 KVM kvm_deliver_exception_payload): instruction breakpoints fault before the
 * instruction and RF suppresses them once; data breakpoints trap after the access (also
 * when the guest arms them itself, and after the iteration of a REP string op that hit);
 * a single-step over an IN that exits to user space traps when the IN completes, and a
 * KVM_GUESTDBG_SINGLESTEP exit over an OUT comes at the next run, before more code; the
 * MOV SS shadow holds #DB traps back for one instruction, ICEBP takes them with it, INT3
 * is followed by them, a general-detect fault drops them; ICEBP and general detect
 * replace DR6.B0-3; an IRET to CPL 3 that nulls GS keeps its base. */
#include <check.h>
#include "tests/check_main.h"

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define FL_TF 0x100u
#define FL_RF 0x10000u
#define SP0 (TVM_STACK - 0x1000)
#define STUB(n) (TVM_STUB + 16 * (n))

static void code(const uint8_t *b, size_t n, uint64_t rflags)
{
    tvm_code(&T, b, n);
    T.c->rflags = rflags;
    emu_state_changed(T.v);
}

/* the #DB/#BP frame (no error code) the stub halted on */
static inline uint64_t frame_rip(void) { return tvm_r64(&T, T.c->gpr[EMU_RSP]); }
static inline uint64_t frame_rflags(void) { return tvm_r64(&T, T.c->gpr[EMU_RSP] + 16); }

START_TEST(exec_breakpoint_faults_before_and_rf_skips_it)
{
    static const uint8_t b[] = {0x90, 0x90, 0xf4};
    T.c->dr[0] = TVM_CODE + 1;
    T.c->dr[7] = 0x401; /* L0, R/W 00 = execute */
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 1); /* fault: before the second NOP */
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff1);
    ck_assert(!(frame_rflags() & FL_RF)); /* #DB never sets RF in the frame (KVM) */
    /* the handler's IRET with RF = 1: the NOP runs once without the breakpoint */
    T.c->rip = TVM_CODE + 1;
    T.c->gpr[EMU_RSP] = SP0;
    T.c->rflags = 2 | FL_RF;
    T.c->halted = false;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 3);
    ck_assert(!(T.c->rflags & FL_RF));
}
END_TEST

START_TEST(exec_breakpoint_comes_before_the_privilege_fault)
{
    static const uint8_t b[] = {0xf4}; /* hlt at CPL 3: #GP without the breakpoint */
    T.c->dr[0] = TVM_CODE;
    T.c->dr[7] = 0x402; /* G0, execute */
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_UCODE64, 0xb, 3, 1, 0);
    tvm_set_seg(&T.c->seg[EMU_SS], SEL_UDATA, 0x3, 3, 0, 1);
    code(b, sizeof b, 2);
    ck_assert_int_eq(T.c->cpl, 3);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff1);
}
END_TEST

START_TEST(data_breakpoint_traps_after_the_write)
{
    static const uint8_t b[] = {
        0x8b, 0x1c, 0x25, 0x00, 0x00, 0x20, 0x00, /* mov ebx, [0x200000]: a read, no hit */
        0x89, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, /* mov [0x200000], eax */
        0x90, 0xf4,
    };
    T.c->dr[1] = TVM_DATA;
    T.c->dr[7] = 0x00d00404; /* L1, R/W 01 = write, LEN 11 = 4 */
    T.c->gpr[EMU_RAX] = 0x2a;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 14); /* trap: after the store */
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff2);
    ck_assert_uint_eq(T.ram[TVM_DATA], 0x2a);
}
END_TEST

START_TEST(data_breakpoint_armed_by_the_guest)
{
    static const uint8_t b[] = {
        0xb8, 0x0c, 0x04, 0xf0, 0x00,             /* mov eax, 0x00f0040c: L1 G1, R/W 11, LEN 4 */
        0x0f, 0x23, 0xf8,                         /* mov dr7, rax */
        0x8b, 0x1c, 0x25, 0x02, 0x00, 0x20, 0x00, /* mov ebx, [0x200002] */
        0xf4,
    };
    T.c->dr[1] = TVM_DATA;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 15);
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff2);
}
END_TEST

START_TEST(data_breakpoint_in_rep_stos_traps_after_that_iteration)
{
    static const uint8_t b[] = {0xf3, 0xaa, 0xf4}; /* rep stosb */
    T.c->dr[1] = TVM_DATA + 5;
    T.c->dr[7] = 0x00100404; /* L1, R/W 01, LEN 1 */
    T.c->gpr[EMU_RDI] = TVM_DATA;
    T.c->gpr[EMU_RCX] = 16;
    T.c->gpr[EMU_RAX] = 0x77;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE); /* the REP STOS goes on after the handler */
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 10);
    ck_assert_uint_eq(T.c->gpr[EMU_RDI], TVM_DATA + 6);
    ck_assert_uint_eq(T.ram[TVM_DATA + 5], 0x77);
    ck_assert_uint_eq(T.ram[TVM_DATA + 6], 0);
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff2);
}
END_TEST

START_TEST(singlestep_over_an_in_exit_traps_at_completion)
{
    static const uint8_t b[] = {0xe4, 0x80, 0x90, 0xf4}; /* in al, 0x80; nop; hlt */
    code(b, sizeof b, 2 | FL_TF);
    ck_assert_int_eq(RUN(), EMU_EXIT_IO);
    uint8_t in = 0x5a;
    emu_complete_io(T.v, &in);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 2); /* right after the IN */
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], SP0 - 40); /* one #DB */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0x5a);
    ck_assert(T.c->dr[6] & 0x4000);
}
END_TEST

START_TEST(vmm_singlestep_over_an_out_exit_stops_right_after_it)
{
    static const uint8_t b[] = {0xe6, 0x80, 0x90, 0x90, 0xf4}; /* out 0x80, al; nop; nop */
    emu_set_guest_debug(T.v, 0x1 | 0x2, NULL); /* KVM_GUESTDBG_ENABLE | SINGLESTEP */
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_IO);
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG); /* before the NOP runs */
    ck_assert_uint_eq(X.debug.pc, TVM_CODE + 2);
    ck_assert_uint_eq(X.debug.dr6 & 0x4000, 0x4000);
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG);
    ck_assert_uint_eq(X.debug.pc, TVM_CODE + 3);
}
END_TEST

START_TEST(movss_shadow_holds_the_singlestep_trap)
{
    static const uint8_t b[] = {0x8e, 0xd0, 0x90, 0xf4}; /* mov ss, eax; nop; hlt */
    T.c->gpr[EMU_RAX] = SEL_DATA;
    code(b, sizeof b, 2 | FL_TF);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 3); /* after the NOP, not after MOV SS */
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], SP0 - 40);
    ck_assert_uint_eq(T.c->dr[6], 0xffff4ff0);
}
END_TEST

/* mov ss, [0x200000] with a read/write watchpoint on it, then ICEBP or INT3 */
static void movss_watch(uint8_t next)
{
    const uint8_t b[] = {0x8e, 0x14, 0x25, 0x00, 0x00, 0x20, 0x00, next, 0xf4};
    T.ram[TVM_DATA] = SEL_DATA;
    T.c->dr[1] = TVM_DATA;
    T.c->dr[6] = 0xffff0ff1; /* a stale B0 */
    T.c->dr[7] = 0x00f00408; /* G1, R/W 11, LEN 4 */
    code(b, sizeof b, 2);
}

START_TEST(movss_watchpoint_then_icebp_is_one_db)
{
    movss_watch(0xf1);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 8);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], SP0 - 40); /* one #DB: ICEBP took the held trap */
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff0);     /* ICEBP: B0-3 cleared, none set */
}
END_TEST

START_TEST(movss_watchpoint_then_int3_traps_at_the_bp_handler)
{
    movss_watch(0xcc);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), STUB(3)); /* #BP delivered, then the held #DB */
    ck_assert_uint_eq(tvm_r64(&T, SP0 - 40), TVM_CODE + 8); /* the #BP frame */
    ck_assert_uint_eq(T.c->dr[6], 0xffff0ff2);
}
END_TEST

START_TEST(icebp_clears_dr6_trap_bits)
{
    static const uint8_t b[] = {0xf1, 0xf4};
    T.c->dr[6] = 0xffff4ff3;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 1);
    ck_assert_uint_eq(T.c->dr[6], 0xffff4ff0); /* BS sticky, B0-3 replaced */
}
END_TEST

START_TEST(general_detect_faults_and_replaces_trap_bits)
{
    static const uint8_t b[] = {0x0f, 0x23, 0xf0, 0xf4}; /* mov dr6, rax */
    T.c->dr[6] = 0xffff0ff1;
    T.c->dr[7] = 0x2400;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE);
    ck_assert_uint_eq(T.c->dr[6], 0xffff2ff0);
    ck_assert_uint_eq(T.c->dr[7], 0x400);
}
END_TEST

START_TEST(general_detect_after_movss_drops_the_held_singlestep)
{
    static const uint8_t b[] = {0x8e, 0xd0, 0x0f, 0x23, 0xf0, 0xf4}; /* mov ss, eax; mov dr6, rax */
    T.c->gpr[EMU_RAX] = SEL_DATA;
    T.c->dr[7] = 0x2400;
    code(b, sizeof b, 2 | FL_TF);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(frame_rip(), TVM_CODE + 2);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], SP0 - 40);
    ck_assert_uint_eq(T.c->dr[6], 0xffff2ff0); /* BD only */
}
END_TEST

START_TEST(iret_to_user_nulling_gs_keeps_its_base)
{
    static const uint8_t b[] = {0x48, 0xcf}; /* iretq */
    uint64_t sp = SP0 - 40;
    tvm_w64(&T, sp, TVM_CODE + 0x100);
    tvm_w64(&T, sp + 8, SEL_UCODE64);
    tvm_w64(&T, sp + 16, 2);
    tvm_w64(&T, sp + 24, TVM_STACK - 0x2000);
    tvm_w64(&T, sp + 32, SEL_UDATA);
    T.ram[TVM_CODE + 0x100] = 0xf4; /* hlt at CPL 3: #GP */
    T.c->seg[EMU_GS].base = 0x123000;
    T.c->gpr[EMU_RSP] = sp;
    code(b, sizeof b, 2);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(T.c->seg[EMU_GS].selector, 0);
    ck_assert_uint_eq(T.c->seg[EMU_GS].base, 0x123000);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_debug_regs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, exec_breakpoint_faults_before_and_rf_skips_it);
    tcase_add_test(tc, exec_breakpoint_comes_before_the_privilege_fault);
    tcase_add_test(tc, data_breakpoint_traps_after_the_write);
    tcase_add_test(tc, data_breakpoint_armed_by_the_guest);
    tcase_add_test(tc, data_breakpoint_in_rep_stos_traps_after_that_iteration);
    tcase_add_test(tc, singlestep_over_an_in_exit_traps_at_completion);
    tcase_add_test(tc, vmm_singlestep_over_an_out_exit_stops_right_after_it);
    tcase_add_test(tc, movss_shadow_holds_the_singlestep_trap);
    tcase_add_test(tc, movss_watchpoint_then_icebp_is_one_db);
    tcase_add_test(tc, movss_watchpoint_then_int3_traps_at_the_bp_handler);
    tcase_add_test(tc, icebp_clears_dr6_trap_bits);
    tcase_add_test(tc, general_detect_faults_and_replaces_trap_bits);
    tcase_add_test(tc, general_detect_after_movss_drops_the_held_singlestep);
    tcase_add_test(tc, iret_to_user_nulling_gs_keeps_its_base);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
