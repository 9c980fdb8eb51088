//! The probes' records as ring buffers hand them over: bytes, unaligned.

use memray_ebpf_common::code_snapshot::CodeSnapshotHeader;
use memray_ebpf_common::execs::ExecNotice;
use memray_ebpf_common::native_stack::{NativeStackHeader, NativeUnmapping};
use memray_ebpf_common::python_stack::{StackFrame, StackHeader, StackSample};
use memray_ebpf_common::AllocationEvent;

/// The `T` at the start of `record`, if it is that long.
pub(crate) fn read<T: Plain>(record: &[u8]) -> Option<T> {
    let bytes = record.get(..size_of::<T>())?;
    // SAFETY: any bytes are a valid `T` (`Plain`); `bytes` is as long; read unaligned.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// A record of a ring: any bytes of its size are a valid value.
///
/// # Safety
/// Only for `repr(C)` types made of integers.
pub(crate) unsafe trait Plain: Copy {}
// SAFETY: repr(C), u32s then u64s.
unsafe impl Plain for AllocationEvent {}
// SAFETY: repr(C), two u32s.
unsafe impl Plain for ExecNotice {}
// SAFETY: repr(C), a u64, a u32, two u16s.
unsafe impl Plain for StackHeader {}
// SAFETY: repr(C), two u64s, an i32 and a u32.
unsafe impl Plain for StackFrame {}
// SAFETY: repr(C), two u32s and a `StackHeader`.
unsafe impl Plain for StackSample {}
// SAFETY: repr(C), u32s, u64s and arrays of them.
unsafe impl Plain for CodeSnapshotHeader {}
// SAFETY: repr(C), u32s then u64s.
unsafe impl Plain for NativeStackHeader {}
// SAFETY: repr(C), u32s then u64s.
unsafe impl Plain for NativeUnmapping {}
