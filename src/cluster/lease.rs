//! One leader among egate's replicas, through a `coordination.k8s.io/v1`
//! Lease, as client-go's leader election does it: the holder renews the
//! lease every third of its duration; another replica takes it over once
//! it has not been renewed for a whole duration. Writes use the lease's
//! resourceVersion, so two replicas can never both win the same takeover.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// A lease this process competes for.
pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl Election {
    /// Competes for lease `name` in `namespace` as `identity`.
    pub fn new(client: Client, namespace: &str, name: &str, identity: String, duration: Duration) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.into(), identity, duration }
    }

    /// How often [`Election::try_lead`] should run: a third of the duration.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Takes or renews the lease; whether this process holds it now.
    pub async fn try_lead(&self) -> Result<bool> {
        let now = Timestamp::now();
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(now, now, 0)),
            };
            return Ok(accepted(self.api.create(&PostParams::default(), &lease).await)?);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !mine && !self.expired(&spec, now) {
            return Ok(false);
        }
        let acquired = if mine { spec.acquire_time.map_or(now, |t| t.0) } else { now };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let renewed = Lease { metadata: lease.metadata, spec: Some(self.spec(acquired, now, transitions)) };
        Ok(accepted(self.api.replace(&self.name, &PostParams::default(), &renewed).await)?)
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Not renewed for a whole duration (or never held).
    fn expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let duration = spec.lease_duration_seconds.map_or(self.duration, |s| Duration::from_secs(s.max(0) as u64));
        match &spec.renew_time {
            None => true,
            Some(renewed) => {
                let deadline = renewed.0.checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX));
                deadline.is_ok_and(|deadline| deadline < now)
            }
        }
    }
}

/// A write the API server took is leadership; a conflict (another replica
/// wrote first) is not, and is no error.
fn accepted<T>(result: kube::Result<T>) -> kube::Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// This process's identity: the pod's name when Kubernetes gives it
/// (`POD_NAME`), else the host name and process id.
pub fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
