/* abi/pit.h: the in-kernel i8254 PIT (KVM_CREATE_PIT / KVM_CREATE_PIT2).
 *
 * CONTRACT between the PIT code (abi/pit.c; owner) and the rest of abi/
 * (users: vm_ioctl.c for the ioctls, vcpu_run.c for guest port I/O,
 * objects.c for VM teardown). Functions may be added; existing ones keep
 * their meaning.
 *
 * Behaviour follows Linux 6.12 arch/x86/kvm/i8254.c: three channels on ports
 * 0x40-0x43 (count/latch/read-back, access modes LSB/MSB/word, modes 0-5,
 * BCD bit stored but counting binary as in KVM), counters derived from the
 * host CLOCK_MONOTONIC, the speaker port 0x61 (only with
 * KVM_PIT_SPEAKER_DUMMY, as kvm_create_pit registers it only then), and
 * channel 0 raising GSI 0 (edge: level 1 then 0) at the programmed rate from
 * the PIT's own timer thread.
 *
 * Threading: all channel state is under the PIT's own mutex; any thread may
 * call these functions. Lock order: the PIT never calls the irqchip while
 * holding its mutex, so the irqchip lock and the PIT lock never nest.
 *
 * Reinject (KVM_REINJECT_CONTROL): the setting is stored, but ticks are
 * always delivered with KVM's non-reinject (discard) policy: expiries that
 * happen before the previous tick was injected coalesce into one. KVM's
 * reinject mode needs an ack notifier on the PIC and IOAPIC EOI paths (and a
 * mask notifier), which the irqchip does not provide.
 */
#ifndef SOFTKVM_ABI_PIT_H
#define SOFTKVM_ABI_PIT_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "abi/irqchip.h"

struct abi_pit;

/* kvm_create_pit: reset state (channels in mode 0xff with count 0x10000,
 * gate high on channels 0/1), reinject on, timer thread started. `flags` are
 * kvm_pit_config.flags (KVM_PIT_SPEAKER_DUMMY). The irqchip must outlive the
 * PIT. NULL on allocation / thread failure. */
struct abi_pit *abi_pit_create(struct abi_irqchip *chip, uint32_t flags);
/* Stops and joins the timer thread, frees everything. NULL is a no-op. */
void abi_pit_destroy(struct abi_pit *pit);

/* Guest port I/O: true if the access belongs to the PIT (0x40-0x43 fully
 * inside the range, or 0x61 with the speaker registered); IN fills `data`
 * (size bytes, the value zero-extended). Called once per element of string
 * I/O. */
bool abi_pit_pio(struct abi_pit *pit, uint16_t port, bool in, void *data, unsigned size);

/* KVM_GET_PIT / KVM_SET_PIT (channels only) and KVM_GET_PIT2 / KVM_SET_PIT2
 * (channels + flags). SET reloads every channel's count as
 * kvm_vm_ioctl_set_pit{,2} do: channels 1/2 restart counting now (their
 * count_load_time is replaced), channel 0 re-arms its timer; SET_PIT2 with
 * KVM_PIT_FLAGS_HPET_LEGACY newly set stops channel 0's timer. */
void abi_pit_get_state(struct abi_pit *pit, struct kvm_pit_state *s);
void abi_pit_set_state(struct abi_pit *pit, const struct kvm_pit_state *s);
void abi_pit_get_state2(struct abi_pit *pit, struct kvm_pit_state2 *s);
void abi_pit_set_state2(struct abi_pit *pit, const struct kvm_pit_state2 *s);

/* KVM_REINJECT_CONTROL (see the reinject note above). */
void abi_pit_set_reinject(struct abi_pit *pit, bool reinject);
bool abi_pit_reinject(struct abi_pit *pit);

#endif
