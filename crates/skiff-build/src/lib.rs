//! Building images: the Dockerfile builder (`build`: stages, COPY/ADD/RUN layers, the layer
//! cache), and how the config-only instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
//! WORKDIR, VOLUME, STOPSIGNAL) change an image config, shared by `skiff import --change` and the
//! builder.

pub mod build;
pub mod config;
pub mod context;
pub mod expand;
pub mod import;
pub mod run;
pub mod words;

pub use build::{BuildOptions, build};
pub use config::{BuildError, apply_change};
pub use import::import_rootfs;
pub use run::{RunStep, Runner};
