//! A deny-all WASI preview 1 shim: the few functions Rust's std for
//! wasm32-wasip1 imports, granting no capability. There are no preopened
//! directories, no environment, no arguments and no sockets; stdout and
//! stderr go to a small buffer the host reads when a guest traps (a Rust
//! panic message), clocks and randomness are given because std's
//! `HashMap` and `Instant` need them. Any other import is refused at load.
//!
//! A shim of our own, rather than wasmtime-wasi, keeps stores free of a
//! WASI context and makes "no capability" true by construction.

use std::hash::{BuildHasher, RandomState};

use wasmtime::{Caller, Extern, Linker};

use crate::sandbox::GuestState;

const MODULE: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
/// Cap on what a guest may print.
const CONSOLE_LIMIT: usize = 4096;

/// The WASI functions a guest may import.
pub const GRANTED: [&str; 16] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_read",
    "fd_seek",
    "fd_write",
    "proc_exit",
    "random_get",
    "sched_yield",
];

/// Whether a guest may import `module::name`.
pub fn grants(module: &str, name: &str) -> bool {
    module == MODULE && GRANTED.contains(&name)
}

/// Defines every granted function on the linker.
pub(crate) fn define_shim(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    // No arguments and no environment: both lists are empty.
    linker.func_wrap(MODULE, "args_get", |_: i32, _: i32| SUCCESS)?;
    linker.func_wrap(MODULE, "environ_get", |_: i32, _: i32| SUCCESS)?;
    linker.func_wrap(MODULE, "args_sizes_get", write_two_zeros)?;
    linker.func_wrap(MODULE, "environ_sizes_get", write_two_zeros)?;
    linker.func_wrap(MODULE, "clock_res_get", |mut caller: Caller<'_, GuestState>, _id: i32, out: i32| {
        write_bytes(&mut caller, out, &1_000u64.to_le_bytes())
    })?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, GuestState>, _id: i32, _precision: i64, out: i32| {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            write_bytes(&mut caller, out, &now.to_le_bytes())
        },
    )?;
    // No file descriptors exist: every fd is a bad one, which also ends
    // std's search for preopened directories.
    linker.func_wrap(MODULE, "fd_close", |_: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |_: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: i32, _: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_read", |_: i32, _: i32, _: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_seek", |_: i32, _: i64, _: i32, _: i32| ERRNO_BADF)?;
    linker.func_wrap(MODULE, "fd_write", fd_write)?;
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("the module called proc_exit({code})")))
    })?;
    linker.func_wrap(MODULE, "random_get", random_get)?;
    linker.func_wrap(MODULE, "sched_yield", || SUCCESS)?;
    Ok(())
}

fn write_two_zeros(mut caller: Caller<'_, GuestState>, first: i32, second: i32) -> i32 {
    match write_bytes(&mut caller, first, &0u32.to_le_bytes()) {
        SUCCESS => write_bytes(&mut caller, second, &0u32.to_le_bytes()),
        errno => errno,
    }
}

/// stdout and stderr are kept (capped) for failure messages; other fds are bad.
fn fd_write(mut caller: Caller<'_, GuestState>, fd: i32, iovs: i32, iovs_len: i32, written_out: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return ERRNO_BADF;
    }
    let Some(memory) = memory_of(&mut caller) else { return ERRNO_FAULT };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let mut written: u32 = 0;
    for i in 0..iovs_len.max(0) as usize {
        let at = iovs as u32 as usize + i * 8;
        let Some(iov) = data.get(at..at + 8) else { return ERRNO_FAULT };
        let ptr = u32::from_le_bytes(iov[..4].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(iov[4..].try_into().unwrap()) as usize;
        let Some(bytes) = data.get(ptr..ptr.saturating_add(len)) else { return ERRNO_FAULT };
        let room = CONSOLE_LIMIT.saturating_sub(state.console.len());
        state.console.extend_from_slice(&bytes[..len.min(room)]);
        written = written.saturating_add(len as u32);
    }
    write_bytes(&mut caller, written_out, &written.to_le_bytes())
}

fn random_get(mut caller: Caller<'_, GuestState>, buf: i32, len: i32) -> i32 {
    if len < 0 {
        return ERRNO_INVAL;
    }
    let seed = RandomState::new();
    let bytes: Vec<u8> =
        (0..len as u64 / 8 + 1).flat_map(|i| seed.hash_one(i).to_le_bytes()).take(len as usize).collect();
    write_bytes(&mut caller, buf, &bytes)
}

fn memory_of(caller: &mut Caller<'_, GuestState>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

fn write_bytes(caller: &mut Caller<'_, GuestState>, at: i32, bytes: &[u8]) -> i32 {
    match memory_of(caller) {
        Some(memory) if memory.write(&mut *caller, at as u32 as usize, bytes).is_ok() => SUCCESS,
        _ => ERRNO_FAULT,
    }
}
