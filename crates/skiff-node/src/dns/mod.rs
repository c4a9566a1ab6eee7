//! Cluster DNS, served by the node itself (issue 17, in progress): [`records`] is the zone's
//! content from Services and EndpointSlices, pure; [`server`] answers it over UDP and TCP
//! (hickory-server, see docs/notes/hickory-dns.md) and forwards other names. Keeping the zone
//! current from the API, its address and pods' resolv.conf come next.

pub mod records;
pub mod server;
