//! Support shared by the end-to-end tests: where our binaries are, which Python
//! interpreters this machine has, and a throwaway virtualenv with memray 1.20 to
//! compare against.

pub mod browser;
pub mod captures;
pub mod html_pages;
pub mod interpreters;
pub mod parked_python;
pub mod paths;
pub mod reference;
pub mod run;
pub mod tmux;
