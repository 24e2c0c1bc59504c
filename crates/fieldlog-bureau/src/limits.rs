//! Request rates (token buckets, `governor`): one per enrolled device, counted after its
//! token is checked, and one per network address for enrollment, the one request without a
//! token. A client over its rate is refused `rate_limited` (429) with `Retry-After`.

use crate::http::ApiError;
use crate::net::{RateLimit, ServeConfig};
use fieldlog_domain::DeviceId;
use fieldlog_domain::sync::Refusal;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Limits {
    devices: DefaultKeyedRateLimiter<DeviceId>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

impl Limits {
    pub(crate) fn new(config: &ServeConfig) -> Limits {
        Limits {
            devices: RateLimiter::keyed(quota(config.device_rate)),
            addresses: RateLimiter::keyed(quota(config.enroll_rate)),
        }
    }

    /// Counts one request of `device`.
    pub(crate) fn device(&self, device: DeviceId) -> Result<(), ApiError> {
        check(&self.devices, &device, "this device")
    }

    /// Counts one enrollment from `address`.
    pub(crate) fn enroll(&self, address: IpAddr) -> Result<(), ApiError> {
        check(
            &self.addresses,
            &network_of(address),
            "this network address",
        )
    }

    /// Forgets clients whose buckets are full again, so the maps stay small.
    pub(crate) fn tidy(&self) {
        self.devices.retain_recent();
        self.addresses.retain_recent();
    }
}

fn quota(rate: RateLimit) -> Quota {
    Quota::per_minute(rate.per_minute)
}

fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K, who: &str) -> Result<(), ApiError>
where
    K: std::hash::Hash + Eq + Clone,
{
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Whole seconds, rounded up: a client that waits as told is let in.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::refused(
            Refusal::RateLimited,
            format!("{who} sent too many requests; try again in {secs} s"),
        )
        .retry_after(Duration::from_secs(secs.max(1)))
    })
}

/// The key of an address: itself for IPv4, its /64 for IPv6 (one subscriber's prefix).
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_of_one_prefix_share_a_bucket() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::2"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(network_of(mapped), IpAddr::from([192, 0, 2, 7]));
    }
}
