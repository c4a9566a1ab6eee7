//! Cluster DNS, served by the node itself (issue 17, in progress): [`records`] is the zone's
//! content from Services and EndpointSlices, pure. The server (hickory-server, see
//! docs/notes/hickory-dns.md) and pods' resolv.conf come next.

pub mod records;
