//! The DNS server (hickory-server, UDP and TCP): questions about the cluster zone are answered
//! from the current [`Zone`] (authoritative, 5 s TTL, the zone's SOA on negative answers, so
//! resolvers cache them briefly); other names go to the node's own resolvers.

use super::records::{Answer, Record as ZoneRecord, Type, Zone};
use hickory_resolver::TokioResolver;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Time to live of every answer from the zone (CoreDNS's kubernetes plugin: 5 s).
const TTL: u32 = 5;
/// The most a UDP answer holds when the client says it takes more (the DNS flag day's 1232).
const MAX_UDP: u16 = 1232;
/// How long a TCP connection may sit idle.
const TCP_IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("binding the DNS server to {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the cluster domain {0:?} is not a DNS name")]
    Domain(String),
}

/// Answers from the zone, forwards the rest.
pub struct ClusterDns {
    zone: watch::Receiver<Arc<Zone>>,
    /// `cluster.local.`, and its SOA for negative answers.
    soa: Record,
    /// The node's resolvers (None: names outside the zone are refused).
    upstream: Option<TokioResolver>,
}

impl ClusterDns {
    pub fn new(
        domain: &str,
        zone: watch::Receiver<Arc<Zone>>,
        upstream: Option<TokioResolver>,
    ) -> Result<Self, DnsError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let name = |s: &str| Name::from_ascii(s).map_err(|_| DnsError::Domain(domain.to_string()));
        let soa =
            SOA::new(name(&format!("ns.dns.{fqdn}"))?, name(&format!("hostmaster.{fqdn}"))?, 1, 7200, 1800, 86400, TTL);
        let soa = Record::from_rdata(name(&fqdn)?, TTL, RData::SOA(soa));
        Ok(ClusterDns { zone, soa, upstream })
    }
}

/// Serve `dns` on `addr`, UDP and TCP; the server runs until it is shut down or dropped.
pub async fn serve(addr: SocketAddr, dns: ClusterDns) -> Result<(Server<ClusterDns>, SocketAddr), DnsError> {
    // Port 0: the kernel's free UDP port may be a taken TCP one, so try a few.
    let tries = if addr.port() == 0 { 8 } else { 1 };
    let mut attempt = 1;
    let (udp, tcp, local) = loop {
        let udp = UdpSocket::bind(addr).await.map_err(|source| DnsError::Bind { addr, source })?;
        let local = udp.local_addr().map_err(|source| DnsError::Bind { addr, source })?;
        match TcpListener::bind(local).await {
            Ok(tcp) => break (udp, tcp, local),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < tries => attempt += 1,
            Err(source) => return Err(DnsError::Bind { addr: local, source }),
        }
    };
    let mut server = Server::new(dns);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 32);
    Ok((server, local))
}

fn zone_type(t: RecordType) -> Type {
    match t {
        RecordType::A => Type::A,
        RecordType::AAAA => Type::Aaaa,
        RecordType::SRV => Type::Srv,
        RecordType::PTR => Type::Ptr,
        RecordType::CNAME => Type::Cname,
        _ => Type::Other,
    }
}

/// A zone record as a DNS record owned by `owner`; None for a name that does not parse.
fn to_record(owner: &Name, r: &ZoneRecord) -> Option<Record> {
    let name = |s: &str| Name::from_ascii(s).ok();
    let data = match r {
        ZoneRecord::A(ip) => RData::A(A(*ip)),
        ZoneRecord::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        ZoneRecord::Cname(target) => RData::CNAME(CNAME(name(target)?)),
        ZoneRecord::Ptr(target) => RData::PTR(PTR(name(target)?)),
        ZoneRecord::Srv { port, target } => {
            // Every target the same weight, as CoreDNS gives a Service's (100 / count).
            RData::SRV(SRV::new(0, 100, *port, name(target)?))
        }
    };
    Some(Record::from_rdata(owner.clone(), TTL, data))
}

async fn send<R: ResponseHandler>(
    handle: &mut R,
    request: &Request,
    edns: Option<&Edns>,
    meta: Metadata,
    answers: &[Record],
    soa: &[Record],
) -> ResponseInfo {
    let response = MessageResponseBuilder::new(&request.queries, edns).build(meta, answers, [], soa, []);
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "sending a DNS answer");
            let mut failed = meta;
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ClusterDns {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        // Answer with an OPT when asked with one: without it, UDP answers stop at 512 bytes.
        let edns = request.edns.as_ref().map(|asked| {
            let mut e = Edns::new();
            e.set_max_payload(asked.max_payload().clamp(512, MAX_UDP));
            e
        });
        let edns = edns.as_ref();
        let mut meta = Metadata::response_from_request(&request.metadata);
        let Ok(info) = request.request_info() else {
            meta.response_code = ResponseCode::FormErr;
            return send(&mut handle, request, edns, meta, &[], &[]).await;
        };
        let (qname, qtype) = (info.query.name(), info.query.query_type());
        let answer = {
            let name = qname.to_string().to_lowercase();
            let name = if name.ends_with('.') { name } else { format!("{name}.") };
            self.zone.borrow().answer(&name, zone_type(qtype))
        };
        let owner = info.query.original().name().clone();
        let soa = std::slice::from_ref(&self.soa);
        match answer {
            Answer::Records(records) if info.query.query_class() == DNSClass::IN => {
                meta.authoritative = true;
                let answers: Vec<Record> = records.iter().filter_map(|r| to_record(&owner, r)).collect();
                send(&mut handle, request, edns, meta, &answers, &[]).await
            }
            Answer::Records(_) | Answer::NoData => {
                meta.authoritative = true;
                send(&mut handle, request, edns, meta, &[], soa).await
            }
            Answer::NotReady => {
                meta.response_code = ResponseCode::ServFail;
                send(&mut handle, request, edns, meta, &[], &[]).await
            }
            Answer::NxDomain => {
                meta.authoritative = true;
                meta.response_code = ResponseCode::NXDomain;
                send(&mut handle, request, edns, meta, &[], soa).await
            }
            Answer::NotOurs => {
                let Some(upstream) = &self.upstream else {
                    meta.response_code = ResponseCode::Refused;
                    return send(&mut handle, request, edns, meta, &[], &[]).await;
                };
                meta.recursion_available = true;
                let mut fqdn = Name::from(qname);
                fqdn.set_fqdn(true);
                match upstream.lookup(fqdn, qtype).await {
                    Ok(found) => send(&mut handle, request, edns, meta, found.answers(), &[]).await,
                    Err(e) => {
                        meta.response_code = if e.is_nx_domain() {
                            ResponseCode::NXDomain
                        } else if e.is_no_records_found() {
                            ResponseCode::NoError
                        } else {
                            tracing::debug!(error = %e, name = %qname, "forwarding a DNS question");
                            ResponseCode::ServFail
                        };
                        send(&mut handle, request, edns, meta, &[], &[]).await
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::net::{IpAddr, Ipv4Addr};

    fn zone(domain: &str) -> watch::Receiver<Arc<Zone>> {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }))
        .expect("service");
        let both: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "both", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.21", "clusterIPs": ["10.43.0.21", "fd00:43::21"], "ipFamilies": ["IPv4", "IPv6"]},
        }))
        .expect("service");
        let six: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "six", "namespace": "default"},
            "spec": {"clusterIP": "fd00:43::22", "clusterIPs": ["fd00:43::22"], "ipFamilies": ["IPv6"]},
        }))
        .expect("service");
        let (_tx, rx) = watch::channel(Arc::new(Zone::build(domain, &[svc, both, six], &[] as &[EndpointSlice])));
        rx
    }

    /// A resolver that asks only 127.0.0.1:`port`.
    fn resolver(port: u16) -> TokioResolver {
        let mut ns = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for c in &mut ns.connections {
            c.port = port;
        }
        let mut b = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::default(),
        );
        b.options_mut().use_hosts_file = ResolveHosts::Never;
        b.options_mut().cache_size = 0;
        b.build().expect("resolver")
    }

    #[tokio::test]
    async fn answers_the_zone_and_forwards_the_rest() {
        // "Upstream": another server, authoritative for other.test only.
        let other = ClusterDns::new("other.test", zone("other.test"), None).expect("dns");
        let (mut up, up_addr) = serve("127.0.0.1:0".parse().expect("addr"), other).await.expect("serve");
        let dns = ClusterDns::new("cluster.local", zone("cluster.local"), Some(resolver(up_addr.port()))).expect("dns");
        let (mut server, addr) = serve("127.0.0.1:0".parse().expect("addr"), dns).await.expect("serve");
        let client = resolver(addr.port());

        let a = client.lookup("Web.Default.svc.cluster.local.", RecordType::A).await.expect("an answer");
        let ips: Vec<String> = a.answers().iter().map(|r| r.data.to_string()).collect();
        assert_eq!(ips, ["10.43.0.20"]);
        let srv = client.lookup("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await.expect("srv");
        assert_eq!(srv.answers()[0].data.to_string(), "0 100 80 web.default.svc.cluster.local.");
        let missing = client.lookup("nope.default.svc.cluster.local.", RecordType::A).await.expect_err("nx");
        assert!(missing.is_nx_domain(), "{missing}");
        let nodata = client.lookup("web.default.svc.cluster.local.", RecordType::AAAA).await.expect_err("no data");
        assert!(nodata.is_no_records_found() && !nodata.is_nx_domain(), "{nodata}");
        // IPv6: AAAA of a dual-stack or IPv6 Service; A of an IPv6-only one is no data.
        let ips =
            |l: &hickory_resolver::lookup::Lookup| l.answers().iter().map(|r| r.data.to_string()).collect::<Vec<_>>();
        let both = client.lookup("both.default.svc.cluster.local.", RecordType::AAAA).await.expect("aaaa");
        assert_eq!(ips(&both), ["fd00:43::21"]);
        let both = client.lookup("both.default.svc.cluster.local.", RecordType::A).await.expect("a");
        assert_eq!(ips(&both), ["10.43.0.21"]);
        let six = client.lookup("six.default.svc.cluster.local.", RecordType::A).await.expect_err("no data");
        assert!(six.is_no_records_found() && !six.is_nx_domain(), "{six}");
        let pod = client.lookup("fd00-42--5.default.pod.cluster.local.", RecordType::AAAA).await.expect("pod");
        assert_eq!(ips(&pod), ["fd00:42::5"]);
        let reverse = "2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.";
        let ptr = client.lookup(reverse, RecordType::PTR).await.expect("ptr");
        assert_eq!(ips(&ptr), ["six.default.svc.cluster.local."]);
        // Outside the zone: the upstream's answer.
        let forwarded = client.lookup("web.default.svc.other.test.", RecordType::A).await.expect("forwarded");
        assert_eq!(forwarded.answers()[0].data.to_string(), "10.43.0.20");

        server.shutdown_gracefully().await.expect("shutdown");
        up.shutdown_gracefully().await.expect("shutdown");
    }
}
