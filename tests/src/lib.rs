//! Support shared by the end-to-end tests: where our binaries are, which Python
//! interpreters this machine has, a throwaway virtualenv with memray 1.20 to
//! compare against, and the one way a test skips (`skip`).

pub mod browser;
pub mod captures;
pub mod ebpf_captures;
pub mod html_pages;
pub mod interpreters;
pub mod memray_tree;
pub mod native_extension;
pub mod native_scenarios;
pub mod parked_python;
pub mod paths;
pub mod python_package;
pub mod reference;
pub mod run;
pub mod skip;
pub mod small_disk;
pub mod tmux;
pub mod tracker_fixtures;
pub mod wheel_tools;
