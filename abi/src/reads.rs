//! Declared reads (ABI v1's optional extension): a module may declare the
//! members of the AdmissionRequest it reads, one path a line in a custom
//! section named [`SECTION`] (`object.spec.ephemeralContainers`,
//! `oldObject.spec.ephemeralContainers[*].name`, `userInfo`; names joined
//! by dots, `[*]` for each element of a list). The host then hands it a
//! request holding only those members, in the same JSON shape, cut from
//! the body it already validated. A member the module did not declare is
//! absent. A module that declares nothing gets the whole request.
//!
//! [`declare_reads!`](crate::declare_reads) writes the section.

/// The custom section that lists what a module reads, one path a line.
pub const SECTION: &str = "egate.reads";

/// Declares the request members a guest module reads, in its [`SECTION`]:
/// `egate_abi::declare_reads!("object.spec.ephemeralContainers", "userInfo");`.
/// Natively it expands to nothing.
#[macro_export]
macro_rules! declare_reads {
    ($($path:literal),+ $(,)?) => {
        $crate::__custom_section!("egate.reads", $($path),+);
    };
}
