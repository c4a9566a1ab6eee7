//! Cluster DNS, served by the node itself (issue 17, in progress): [`records`] is the zone's
//! content from Services and EndpointSlices, pure; [`server`] answers it over UDP and TCP
//! (hickory-server, see docs/notes/hickory-dns.md) and forwards other names; [`resolv`] is a
//! pod's resolv.conf for its dnsPolicy. Keeping the zone current from the API, the server's
//! address on the node, and using `resolv` for pods come next.

pub mod records;
pub mod resolv;
pub mod server;
