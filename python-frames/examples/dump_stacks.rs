//! Prints every thread's Python stack of a live process (the library side of
//! `memray dump-stacks`): `cargo run -p python-frames --example dump_stacks -- PID`.

fn main() {
    let Some(pid) = std::env::args().nth(1).and_then(|p| p.parse().ok()) else {
        eprintln!("usage: dump_stacks PID");
        std::process::exit(2);
    };
    match python_frames::dump_stacks(pid, 256) {
        Ok(text) => print!("{text}"),
        Err(err) => {
            eprintln!("dump_stacks: {err}");
            std::process::exit(1);
        }
    }
}
