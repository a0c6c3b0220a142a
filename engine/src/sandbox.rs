//! The wasm sandbox: one wasmtime `Engine` for the process, one
//! `InstancePre` per policy module, and a fresh `Store` + instance per
//! evaluation, capped in time (epoch deadline), memory and output size.
//!
//! A guest is never trusted: every way it can misbehave (trap, timeout,
//! refused memory, bad pointer, oversized or garbage output) comes back as
//! a [`GuestError`], never as a panic of the host.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{
    Config, Engine, ExternType, FuncType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, ValType,
};

use egate_abi::exports::{self, FuncExport, WasmType};

use crate::cache::ModuleCache;
use crate::wasi;

/// Limits every guest runs under.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Cap on a guest's linear memory.
    pub memory_limit_bytes: usize,
    /// Cap on the decision or verdict JSON a guest returns.
    pub output_limit_bytes: usize,
    /// Instances that may run at the same time (the pooling allocator's size).
    pub max_concurrent_instances: u32,
    /// Where compiled modules are cached; `None` disables the cache.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            memory_limit_bytes: 64 << 20,
            output_limit_bytes: 1 << 20,
            max_concurrent_instances: 256,
            cache_dir: ModuleCache::default_dir(),
        }
    }
}

/// Epoch ticks per millisecond of deadline: the ticker runs every millisecond.
const TICK: Duration = Duration::from_millis(1);

/// The process-wide wasm engine and the host functions guests may import.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<SandboxInner>,
}

struct SandboxInner {
    engine: Engine,
    linker: Linker<GuestState>,
    config: SandboxConfig,
    cache: Option<ModuleCache>,
}

/// How much of a pooled memory or table stays mapped between evaluations
/// when the kernel has `PAGEMAP_SCAN` (Linux 6.7+): only the pages an
/// evaluation touched are then reset, with `memset`, instead of being
/// unmapped with `madvise` and faulted in again by the next instance.
/// Without it, keeping memory resident would `memset` all of it, so it is
/// not kept.
fn keep_resident() -> usize {
    if PoolingAllocationConfig::is_pagemap_scan_available() { 4 << 20 } else { 0 }
}

/// Per-evaluation state of a store.
pub(crate) struct GuestState {
    limits: MemoryCap,
    /// What the guest wrote to stdout/stderr (a panic message), capped.
    pub(crate) console: Vec<u8>,
}

/// The wasm engine could not start (a host problem, not a policy's).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm sandbox: {0}")]
pub struct SandboxError(String);

/// Why a module is refused at load. The text completes "module M is
/// refused: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// Not wasm, or not something this engine can compile (including a
    /// memory larger than the cap).
    #[error("it is not a valid wasm module: {0}")]
    Invalid(String),
    /// No exported memory.
    #[error("it does not export its `memory`")]
    NoMemory,
    /// No `egate_abi_v1` marker.
    #[error(
        "it does not export `egate_abi_v1`: it was not built with egate's guest SDK (ABI v1); \
         build it with the egate-guest crate and `egate_guest::policy!`"
    )]
    NotAbiV1,
    /// It declares an input the host cannot give, or reads it cannot cut.
    #[error("{0}")]
    UnknownInput(String),
    /// A function ABI v1 requires is missing.
    #[error("it does not export the function `{0}` that ABI v1 requires")]
    MissingExport(&'static str),
    /// A function ABI v1 requires has another type.
    #[error("its export `{name}` has type {found}, but ABI v1 requires {required}")]
    WrongExportType {
        /// The export, e.g. `egate_evaluate`.
        name: &'static str,
        /// Its type in the module, as wasmtime writes it:
        /// `(type (func (param i32) (result i32)))`.
        found: String,
        /// The signature ABI v1 requires, as `(i32, i32) -> (i64)`.
        required: String,
    },
    /// An import egate does not grant.
    #[error(
        "it imports `{module}::{name}`, which egate does not provide: a policy may import only the WASI functions \
         Rust's std needs ({}), and gets no files, sockets, environment or arguments",
        wasi::GRANTED.join(", ")
    )]
    ForbiddenImport {
        /// The module the import is from, e.g. `wasi_snapshot_preview1` or
        /// `env`.
        module: String,
        /// The imported function (or other item) within it.
        name: String,
    },
    /// The imports are granted but do not link (wrong types).
    #[error("its imports do not link: {0}")]
    Link(String),
}

/// How a guest failed. Each becomes a failure of its policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The epoch deadline passed.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The guest asked for more memory than the cap.
    #[error("exceeded the memory limit of {0} MiB")]
    MemoryLimit(usize),
    /// A wasm trap (including a Rust panic, which aborts).
    #[error("trapped: {0}")]
    Trap(String),
    /// Output outside the guest's memory.
    #[error("returned an output buffer outside its memory (ptr {ptr}, len {len})")]
    BadPointer {
        /// Where the buffer starts in guest memory: the output an export
        /// returned, or the room `egate_alloc` gave for the input.
        ptr: u32,
        /// Its length in bytes.
        len: u32,
    },
    /// Output larger than the cap.
    #[error("returned {len} bytes of output, more than the limit of {limit}")]
    OutputTooLarge {
        /// The length in bytes of the output the guest returned.
        len: u32,
        /// The cap, [`SandboxConfig::output_limit_bytes`].
        limit: usize,
    },
    /// The instance could not be created (pool exhausted, bad memory size).
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
}

/// A module that passed the ABI check, ready to instantiate.
#[derive(Clone)]
pub struct GuestModule {
    pre: InstancePre<GuestState>,
    sandbox: Sandbox,
    /// The inputs it declares (`egate.inputs`).
    inputs: Vec<egate_abi::inputs::Input>,
    /// What it declares it reads of the request (`egate.reads`).
    reads: Option<std::sync::Arc<egate_json::Selection>>,
}

impl Sandbox {
    /// Builds the engine: Cranelift, epoch interruption, the pooling
    /// allocator (copy-on-write memory images), and the deny-all WASI shim.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let keep_resident = keep_resident();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_concurrent_instances)
            .total_memories(config.max_concurrent_instances)
            .total_tables(config.max_concurrent_instances)
            .max_memory_size(config.memory_limit_bytes)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident);
        let mut wasm_config = Config::new();
        wasm_config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true);
        let engine = Engine::new(&wasm_config).map_err(|e| SandboxError(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasi::define_shim(&mut linker).map_err(|e| SandboxError(format!("{e:#}")))?;
        let cache = config.cache_dir.clone().map(|dir| ModuleCache::new(dir, &engine));
        Ok(Self { inner: Arc::new(SandboxInner { engine, linker, config, cache }) })
    }

    /// The limits guests run under.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Compiles a module (or loads it from the cache) and checks it speaks
    /// ABI v1 and imports nothing beyond the WASI shim. The error says what
    /// is missing or refused.
    pub fn load(&self, wasm: &[u8]) -> Result<GuestModule, ModuleError> {
        let engine = &self.inner.engine;
        let module = match &self.inner.cache {
            Some(cache) => cache.get_or_compile(wasm)?,
            None => Module::new(engine, wasm).map_err(|e| ModuleError::Invalid(format!("{e:#}")))?,
        };
        check_abi(&module)?;
        let inputs = crate::inputs::declared(wasm).map_err(ModuleError::UnknownInput)?;
        let reads = crate::inputs::declared_reads(wasm).map_err(ModuleError::UnknownInput)?.map(Into::into);
        let pre = self.inner.linker.instantiate_pre(&module).map_err(|e| ModuleError::Link(format!("{e:#}")))?;
        Ok(GuestModule { pre, sandbox: self.clone(), inputs, reads })
    }
}

/// Increments the engine's epoch every millisecond until the engine is gone.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("egate-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the epoch thread");
}

fn check_abi(module: &Module) -> Result<(), ModuleError> {
    if !matches!(module.get_export(exports::MEMORY), Some(ExternType::Memory(_))) {
        return Err(ModuleError::NoMemory);
    }
    if module.get_export(exports::ABI_MARKER.name).is_none() {
        return Err(ModuleError::NotAbiV1);
    }
    for export in exports::REQUIRED {
        let Some(ExternType::Func(func)) = module.get_export(export.name) else {
            return Err(ModuleError::MissingExport(export.name));
        };
        if !has_signature(&func, &export) {
            return Err(ModuleError::WrongExportType {
                name: export.name,
                found: func.to_string(),
                required: export.signature(),
            });
        }
    }
    if let Some(import) = module.imports().find(|i| !wasi::grants(i.module(), i.name())) {
        return Err(ModuleError::ForbiddenImport { module: import.module().into(), name: import.name().into() });
    }
    Ok(())
}

/// Whether a function has the signature of an ABI export.
fn has_signature(func: &FuncType, export: &FuncExport) -> bool {
    let abi_types = |types: &mut dyn Iterator<Item = ValType>| -> Option<Vec<WasmType>> {
        types
            .map(|t| match t {
                ValType::I32 => Some(WasmType::I32),
                ValType::I64 => Some(WasmType::I64),
                _ => None,
            })
            .collect()
    };
    match (abi_types(&mut func.params()), abi_types(&mut func.results())) {
        (Some(params), Some(results)) => export.accepts(&params, &results),
        _ => false,
    }
}

impl GuestModule {
    /// Runs `egate_validate_settings`, returning the verdict JSON.
    pub fn validate_settings(&self, settings: &[u8], timeout_ms: u64) -> Result<Vec<u8>, GuestError> {
        self.call(timeout_ms, |call| {
            let (ptr, len) = call.write_input(settings)?;
            call.call_export(exports::VALIDATE_SETTINGS.name, &[ptr, len])
        })
    }

    /// Runs `egate_evaluate` in a fresh instance, returning the decision JSON.
    pub fn evaluate(&self, request: &[u8], settings: &[u8], timeout_ms: u64) -> Result<Vec<u8>, GuestError> {
        self.call(timeout_ms, |call| {
            let (req_ptr, req_len) = call.write_input(request)?;
            let (set_ptr, set_len) = call.write_input(settings)?;
            call.call_export(exports::EVALUATE.name, &[req_ptr, req_len, set_ptr, set_len])
        })
    }

    /// The inputs the module declares it reads.
    pub fn inputs(&self) -> &[egate_abi::inputs::Input] {
        &self.inputs
    }

    /// What the module declares it reads of the request; `None`: all of it.
    pub fn reads(&self) -> Option<&std::sync::Arc<egate_json::Selection>> {
        self.reads.as_ref()
    }

    /// Whether the module exports `egate_evaluate_batch` (egate's built-in
    /// library does): several of its policies can then judge one request in
    /// one instance.
    pub fn can_batch(&self) -> bool {
        let batch = &exports::EVALUATE_BATCH;
        self.pre
            .module()
            .get_export(batch.name)
            .and_then(|e| e.func().cloned())
            .is_some_and(|f| has_signature(&f, batch))
    }

    /// Runs `egate_evaluate_batch` in a fresh instance: the settings are a
    /// JSON array of the policies' settings, the output a JSON array of
    /// their decisions.
    pub fn evaluate_batch(&self, request: &[u8], batch: &[u8], timeout_ms: u64) -> Result<Vec<u8>, GuestError> {
        self.call(timeout_ms, |call| {
            let (req_ptr, req_len) = call.write_input(request)?;
            let (set_ptr, set_len) = call.write_input(batch)?;
            call.call_export(exports::EVALUATE_BATCH.name, &[req_ptr, req_len, set_ptr, set_len])
        })
    }

    /// A fresh store and instance with the limits, then `run`.
    fn call(
        &self,
        timeout_ms: u64,
        run: impl FnOnce(&mut GuestCall<'_>) -> Result<Vec<u8>, GuestError>,
    ) -> Result<Vec<u8>, GuestError> {
        let config = self.sandbox.config();
        let limits = MemoryCap { limit: config.memory_limit_bytes, refused: false };
        let mut store = Store::new(self.pre.module().engine(), GuestState { limits, console: Vec::new() });
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(timeout_ms);
        store.epoch_deadline_trap();
        let limits =
            CallLimits { timeout_ms, memory_limit: config.memory_limit_bytes, output_limit: config.output_limit_bytes };
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => {
                return Err(match limits.failure(e, &store) {
                    GuestError::Trap(cause) => GuestError::Instantiate(cause),
                    other => other,
                });
            }
        };
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| GuestError::Instantiate("it has no memory export".into()))?;
        run(&mut GuestCall { store: &mut store, instance, memory, limits })
    }
}

/// The memory cap of one evaluation, as the store's `ResourceLimiter`: it
/// refuses (with a trap) any memory, initial or grown, past `limit` bytes,
/// and remembers that it did, so the failure is named by what happened
/// rather than by wasmtime's wording.
pub(crate) struct MemoryCap {
    limit: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = true;
            return Err(wasmtime::Error::msg(format!(
                "memory of {desired} bytes refused: the cap is {} bytes",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables are bounded by the module and the pooling allocator.
        Ok(true)
    }

    /// One instance per store: the policy's.
    fn instances(&self) -> usize {
        1
    }
}

/// The caps of one evaluation.
#[derive(Clone, Copy)]
struct CallLimits {
    timeout_ms: u64,
    memory_limit: usize,
    output_limit: usize,
}

impl CallLimits {
    /// Names the cause of a wasmtime error: the deadline, the memory cap,
    /// or the trap itself with what the guest printed (a Rust panic message).
    fn failure(&self, e: wasmtime::Error, store: &Store<GuestState>) -> GuestError {
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return GuestError::Timeout(self.timeout_ms);
        }
        if store.data().limits.refused {
            return GuestError::MemoryLimit(self.memory_limit >> 20);
        }
        let text = format!("{e:#}");
        let trap = e
            .downcast_ref::<Trap>()
            .map_or_else(|| text.lines().next().unwrap_or_default().to_string(), ToString::to_string);
        // What the guest printed (a panic message), on one line and short:
        // it ends up in a message for the person running kubectl.
        let console = String::from_utf8_lossy(&store.data().console);
        let printed: String = console.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
        match printed.as_str() {
            "" => GuestError::Trap(trap),
            printed => GuestError::Trap(format!("{trap}; it printed: {printed}")),
        }
    }
}

/// One evaluation's store and instance.
struct GuestCall<'s> {
    store: &'s mut Store<GuestState>,
    instance: wasmtime::Instance,
    memory: wasmtime::Memory,
    limits: CallLimits,
}

impl GuestCall<'_> {
    /// Copies `bytes` into guest memory obtained from `egate_alloc`.
    fn write_input(&mut self, bytes: &[u8]) -> Result<(i32, i32), GuestError> {
        let len = i32::try_from(bytes.len()).map_err(|_| GuestError::Trap("input larger than 2 GiB".into()))?;
        let ptr = self
            .instance
            .get_typed_func::<i32, i32>(&mut *self.store, exports::ALLOC.name)
            .and_then(|alloc| alloc.call(&mut *self.store, len))
            .map_err(|e| self.limits.failure(e, self.store))?;
        self.memory
            .write(&mut *self.store, ptr as u32 as usize, bytes)
            .map_err(|_| GuestError::BadPointer { ptr: ptr as u32, len: len as u32 })?;
        Ok((ptr, len))
    }

    /// Calls an export taking i32s and returning a packed i64 buffer, and
    /// copies that buffer out.
    fn call_export(&mut self, name: &str, args: &[i32]) -> Result<Vec<u8>, GuestError> {
        let packed = match *args {
            [a, b] => self
                .instance
                .get_typed_func::<(i32, i32), i64>(&mut *self.store, name)
                .and_then(|f| f.call(&mut *self.store, (a, b))),
            [a, b, c, d] => self
                .instance
                .get_typed_func::<(i32, i32, i32, i32), i64>(&mut *self.store, name)
                .and_then(|f| f.call(&mut *self.store, (a, b, c, d))),
            _ => unreachable!("ABI v1 exports take 2 or 4 arguments"),
        }
        .map_err(|e| self.limits.failure(e, self.store))?;
        let (ptr, len) = egate_abi::unpack(packed);
        if len as usize > self.limits.output_limit {
            return Err(GuestError::OutputTooLarge { len, limit: self.limits.output_limit });
        }
        let data = self.memory.data(&*self.store);
        data.get(ptr as usize..ptr as usize + len as usize)
            .map(<[u8]>::to_vec)
            .ok_or(GuestError::BadPointer { ptr, len })
    }
}
