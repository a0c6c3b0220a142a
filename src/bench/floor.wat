;; The baseline floor of `egate bench --baseline-floor`: an ABI v1 module
;; that answers `{"allowed":true}` without reading its input. What it costs
;; is the host's share of an evaluation (parse, match, a fresh instance,
;; copying the request in, reading the decision out), so a policy's p50
;; over this module's is the share of the policy's own code.
(module
  (memory (export "memory") 64)
  (global $next (mut i32) (i32.const 65536))
  (data (i32.const 1024) "{\22allowed\22:true}")
  (data (i32.const 2048) "{\22valid\22:true}")
  (func (export "egate_abi_v1"))
  (func (export "egate_alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  (func (export "egate_validate_settings") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 2048) (i64.const 32)) (i64.const 14)))
  (func (export "egate_evaluate") (param i32 i32 i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 16))))
