//! Probe placement on this machine's libc: for every probed function the
//! entry probe's offset follows the rule of `memray_ebpf::placement`.

use iced_x86::{Decoder, DecoderOptions, FlowControl};
use memray_ebpf::placement::{entry_placement, kernel_emulates};
use memray_ebpf::{Function, LibcImage};

#[test]
fn every_probed_function_of_this_libc() {
    let libc = LibcImage::of_process(std::process::id()).expect("our own libc");
    for function in Function::ALL {
        let Ok(code) = libc.function(function.symbol()) else {
            assert_eq!(
                function,
                Function::Reallocarray,
                "libc has no {}",
                function.symbol()
            );
            continue;
        };
        let placement = entry_placement(code.bytes, 3);
        let mut decoder = Decoder::with_ip(64, code.bytes, 0, DecoderOptions::NONE);
        let before: Vec<_> = decoder
            .iter()
            .take_while(|i| i.ip() < placement.offset)
            .collect();
        let boundary = before.last().map_or(0, |i| i.next_ip());
        assert_eq!(
            boundary,
            placement.offset,
            "{}: not an instruction boundary",
            function.symbol()
        );
        assert!(
            before.iter().all(|i| i.flow_control() == FlowControl::Next),
            "{}: the probe must not be past a branch",
            function.symbol()
        );
        assert!(
            before.iter().all(|i| !kernel_emulates(code.bytes, i)),
            "{}: an earlier instruction is emulated",
            function.symbol()
        );
        eprintln!(
            "{:>14}: +{} emulated={}",
            function.symbol(),
            placement.offset,
            placement.emulated
        );
    }
    // glibc's free starts with `test %rdi,%rdi`, which the kernel single-steps.
    let free = libc.function("free").expect("free");
    assert!(
        entry_placement(free.bytes, 1).emulated,
        "free's probe is not emulated"
    );
}
