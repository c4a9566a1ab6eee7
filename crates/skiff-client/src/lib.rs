//! What skiff's in-cluster components share as clients of the API server (client-go's `tools`):
//! the event recorder ([`events`]), used by the node agent (reason `kubelet`), the scheduler and
//! the controllers. The controllers' watch caches and work queue are `skiff_controllers::work`;
//! they move here if the node agent comes to need them too.

pub mod events;
