//! egate against the Kubernetes API server: policies as custom resources
//! (`crd`), and the policy set `egate serve --policies-from cluster` builds
//! from them as they change, with each object's status (`policies`), and
//! the webhook's check of policy objects before they are stored (`admission`).

pub mod admission;
pub mod background;
pub mod crd;
pub mod grant_watch;
pub mod grants;
pub mod lease;
pub mod objects;
pub mod policies;
pub mod report;
pub mod scan;
