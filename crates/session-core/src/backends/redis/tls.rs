//! Building TLS clients from a [`TlsPlan`]: the same trusted roots, client identity and
//! verification switches for every `(host, port)` the backend connects to (the standalone
//! server, the sentinels and the masters they name, every cluster node). The files behind
//! the plan were read when it was made ([`SessionConfig::plan`](crate::SessionConfig::plan)).

//!
//! Without the `tls` feature no plan has TLS, and [`TlsPlan`] is an empty type with the same
//! methods: the code that builds clients keeps one path, with nothing to call at run time.

#[cfg(feature = "tls")]
pub(crate) use imp::TlsPlan;
#[cfg(not(feature = "tls"))]
pub(crate) use off::TlsPlan;

#[cfg(not(feature = "tls"))]
mod off {
    use redis::{Client, ConnectionAddr, ConnectionInfo, RedisResult};

    /// No value exists: no plan asks for TLS in a build without it.
    #[derive(Clone)]
    pub(crate) enum TlsPlan {}

    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    impl TlsPlan {
        pub(crate) fn tls_addr(&self, _: String, _: u16) -> ConnectionAddr {
            match *self {}
        }
        pub(crate) fn build_client(&self, _: ConnectionInfo) -> RedisResult<Client> {
            match *self {}
        }
        pub(crate) fn tls_info(&self, _: ConnectionInfo) -> ConnectionInfo {
            match *self {}
        }
        #[cfg(feature = "cluster")]
        #[cfg(feature = "cluster")]
        pub(crate) fn cluster_builder(
            &self,
            _: redis::cluster::ClusterClientBuilder,
        ) -> redis::cluster::ClusterClientBuilder {
            match *self {}
        }
    }
}

#[cfg(feature = "tls")]
mod imp {
    use redis::{
        Client, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult,
        TlsCertificates, TlsMode,
    };

    pub(crate) use crate::plan::TlsPlan;

    impl TlsPlan {
        /// A TLS address for `host:port` with these settings' verification mode. The
        /// certificates are added by [`TlsPlan::build_client`].
        pub(crate) fn tls_addr(&self, host: impl Into<String>, port: u16) -> ConnectionAddr {
            ConnectionAddr::TcpTls {
                host: host.into(),
                port,
                insecure: self.tls_mode() == TlsMode::Insecure,
                tls_params: None,
            }
        }

        /// `Secure`, or `Insecure` for `ssl_cert_reqs = none` (redis-rs then checks nothing and
        /// sends no SNI).
        pub(crate) fn tls_mode(&self) -> TlsMode {
            if self.verify {
                TlsMode::Secure
            } else {
                TlsMode::Insecure
            }
        }

        /// The roots and client identity in redis-rs's form (for builders that take them apart,
        /// such as `SentinelClientBuilder`), or `None` when the defaults (system roots, no client
        /// certificate) apply.
        pub(crate) fn certificates(&self) -> Option<TlsCertificates> {
            (self.roots.is_some() || self.client.is_some()).then(|| TlsCertificates {
                client_tls: self.client.clone(),
                root_cert: self.roots.clone(),
            })
        }

        /// A client for `info` with these settings: the address made TLS as
        /// [`TlsPlan::tls_info`] does, then certificates added and host name checks turned
        /// off when `ssl_check_hostname` is false. A unix socket address is an error.
        pub(crate) fn build_client(&self, info: ConnectionInfo) -> RedisResult<Client> {
            let info = self.tls_info(info);
            if matches!(info.addr(), ConnectionAddr::Unix(_)) {
                return Err(RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "TLS (session_redis_ssl) needs a TCP address, not a unix socket",
                )));
            }
            let client = match self.certificates() {
                Some(certificates) => Client::build_with_tls(info, certificates)?,
                None => Client::open(info)?,
            };
            if self.verify && !self.check_hostname {
                // After build_with_tls, which resets the flag.
                let info = client.get_connection_info().clone();
                let mut addr = info.addr().clone();
                addr.set_danger_accept_invalid_hostnames(true);
                return Client::open(info.set_addr(addr));
            }
            Ok(client)
        }

        /// The cluster client builder with these settings: TLS mode, certificates (which a
        /// cluster client only takes through its builder) and the host name switch, for every
        /// node it connects to.
        #[cfg(feature = "cluster")]
        pub(crate) fn cluster_builder(
            &self,
            builder: redis::cluster::ClusterClientBuilder,
        ) -> redis::cluster::ClusterClientBuilder {
            let mut builder = builder.tls(self.tls_mode());
            if let Some(certificates) = self.certificates() {
                builder = builder.certs(certificates);
            }
            if self.verify && !self.check_hostname {
                builder = builder.danger_accept_invalid_hostnames(true);
            }
            builder
        }

        /// `info` with a TLS address: a plain TCP address becomes a TLS one; an address that is
        /// already TLS keeps its own `#insecure`, made insecure by `ssl_cert_reqs = none`.
        /// Other addresses (a unix socket) are left alone.
        pub(crate) fn tls_info(&self, info: ConnectionInfo) -> ConnectionInfo {
            let addr = match info.addr().clone() {
                ConnectionAddr::Tcp(host, port) => self.tls_addr(host, port),
                ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure,
                    ..
                } => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: insecure || !self.verify,
                    tls_params: None,
                },
                other => other,
            };
            info.set_addr(addr)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn build_client_makes_tls_addresses() {
            let settings = TlsPlan {
                roots: None,
                client: None,
                verify: false,
                check_hostname: true,
            };
            let info =
                redis::IntoConnectionInfo::into_connection_info("redis://10.0.0.1:6380").unwrap();
            let client = settings.build_client(info).unwrap();
            assert!(matches!(
                client.get_connection_info().addr(),
                ConnectionAddr::TcpTls {
                    insecure: true,
                    port: 6380,
                    ..
                }
            ));
            let unix =
                redis::IntoConnectionInfo::into_connection_info("unix:///tmp/r.sock").unwrap();
            assert!(settings.build_client(unix).is_err());
        }
    }
}
