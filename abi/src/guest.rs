//! The guest's side of the ABI: its memory handling, and the export
//! functions themselves ([`guest_exports!`](crate::guest_exports)). The
//! SDK's `policy!` and the built-in library both export through it.

/// `egate_alloc`: room for `len` bytes, never freed (every evaluation runs
/// in a fresh instance).
pub fn alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else { return 0 };
    let buffer = Vec::<u8>::with_capacity(len).leak();
    buffer.as_mut_ptr() as usize as i32
}

/// Reads a buffer the host wrote at `ptr`.
///
/// # Safety
/// `ptr..ptr+len` must be memory the host wrote through `egate_alloc`.
pub unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    if len <= 0 {
        return &[];
    }
    // SAFETY: the host wrote `len` bytes at `ptr`, inside a buffer from `alloc`.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

/// Hands an output buffer to the host, packed by [`crate::pack`].
pub fn output(bytes: Vec<u8>) -> i64 {
    let bytes = bytes.leak();
    crate::pack(bytes.as_ptr() as usize as u32, bytes.len() as u32)
}

/// Exports the ABI v1 functions of a module, each calling the given
/// function on the bytes the host wrote and returning the bytes it hands
/// back: `validate_settings: fn(&[u8]) -> Vec<u8>`, `evaluate:
/// fn(&[u8], &[u8]) -> Vec<u8>`, and optionally `evaluate_batch` like
/// `evaluate`. The names are those of [`crate::exports`]; on targets other
/// than `wasm32` nothing is exported.
#[macro_export]
macro_rules! guest_exports {
    (validate_settings: $validate:expr, evaluate: $evaluate:expr $(, evaluate_batch: $batch:expr)? $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // The names here must be those of egate_abi::exports (a macro
            // cannot take them from a const); the engine's tests load real
            // modules through exports::REQUIRED, which catches a mismatch.
            #[unsafe(no_mangle)]
            pub extern "C" fn egate_abi_v1() {}

            #[unsafe(no_mangle)]
            pub extern "C" fn egate_alloc(len: i32) -> i32 {
                $crate::guest::alloc(len)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn egate_validate_settings(ptr: i32, len: i32) -> i64 {
                // SAFETY: the host passes a buffer it wrote through egate_alloc.
                let settings = unsafe { $crate::guest::input(ptr, len) };
                $crate::guest::output(($validate)(settings))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn egate_evaluate(req_ptr: i32, req_len: i32, set_ptr: i32, set_len: i32) -> i64 {
                // SAFETY: the host passes buffers it wrote through egate_alloc.
                let (request, settings) =
                    unsafe { ($crate::guest::input(req_ptr, req_len), $crate::guest::input(set_ptr, set_len)) };
                $crate::guest::output(($evaluate)(request, settings))
            }

            $(
                #[unsafe(no_mangle)]
                pub extern "C" fn egate_evaluate_batch(req_ptr: i32, req_len: i32, set_ptr: i32, set_len: i32) -> i64 {
                    // SAFETY: the host passes buffers it wrote through egate_alloc.
                    let (request, batch) =
                        unsafe { ($crate::guest::input(req_ptr, req_len), $crate::guest::input(set_ptr, set_len)) };
                    $crate::guest::output(($batch)(request, batch))
                }
            )?
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_packs_pointer_and_length() {
        let (_, len) = crate::unpack(super::output(vec![1, 2, 3]));
        assert_eq!(len, 3);
    }

    // The macro expands natively (to nothing), for closures as for paths.
    crate::guest_exports!(validate_settings: |_: &[u8]| Vec::new(), evaluate: |_: &[u8], _: &[u8]| Vec::new());
}
