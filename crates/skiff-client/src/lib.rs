//! What skiff's in-cluster components share as clients of the API server (client-go's `tools`):
//! for now the event recorder ([`events`]), used by the node agent (reason `kubelet`) and the
//! scheduler. Informers and work queues that the controllers need go here when they come.

pub mod events;
