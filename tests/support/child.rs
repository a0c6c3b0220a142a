//! What test binaries share about the processes they start.

use std::process::Command;

/// The child gets SIGKILL when the test's thread ends, however it ends, so
/// no server a test starts outlives it.
pub fn die_with_the_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}
