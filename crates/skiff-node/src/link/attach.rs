//! `kubectl attach`: a session joined to a running container's main process. The shim owns the
//! container's stdio, so it serves attach: asked with an `attach` request on its control socket,
//! it answers with the container's stdin attached to the reply (the write end of its stdin pipe,
//! or its terminal's master; only when the pod asks for `stdin`), then sends the container's
//! output on that connection as frames (`skiff_stream::frames`, numbered by [`Channel`]) until the container ends or the session leaves.
//! Writing stdin and resizing happen here, on the passed descriptor, without the shim.

use crate::pod_dir::PodDir;
use crate::shim::{Reply, Request};
use skiff_nodeapi::{Channel, ExecProcess};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a session could not be joined; the API server answers the client with this text.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("reaching the pod: {0}")]
    Reach(#[source] std::io::Error),
    #[error("asking the pod: {0}")]
    Ask(#[source] std::io::Error),
    #[error("the pod's answer: {0}")]
    Answer(#[source] serde_json::Error),
    /// The shim's reply refused: only its text crosses the control socket.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Encode(serde_json::Error),
    /// The blocking request task did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// Making the connection or the stdin descriptor usable here.
    #[error(transparent)]
    Io(std::io::Error),
}

/// Attach to the running `container` of the pod in `dir`: its output from now on, its stdin if
/// `stdin` (and the pod gave it one), its terminal's size if `tty`.
pub async fn attach(dir: &PodDir, container: &str, stdin: bool, tty: bool) -> Result<ExecProcess, AttachError> {
    let socket = dir.socket();
    let request = Request::Attach { container: container.to_string(), stdin };
    let (conn, input) = tokio::task::spawn_blocking(move || {
        let conn = std::os::unix::net::UnixStream::connect(&socket).map_err(AttachError::Reach)?;
        let mut line = serde_json::to_vec(&request).map_err(AttachError::Encode)?;
        line.push(b'\n');
        (&conn).write_all(&line).map_err(AttachError::Ask)?;
        let (reply, input) = crate::shim::fdpass::receive(&conn, 4096).map_err(AttachError::Ask)?;
        let reply: Reply = serde_json::from_slice(&reply).map_err(AttachError::Answer)?;
        match reply.error {
            Some(e) => Err(AttachError::Refused(e)),
            None => Ok((conn, input)),
        }
    })
    .await??;
    conn.set_nonblocking(true).map_err(AttachError::Io)?;
    let mut conn = tokio::net::UnixStream::from_std(conn).map_err(AttachError::Io)?;
    let (mut out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (mut err_w, err_r) = tokio::io::duplex(64 * 1024);
    // Dropping the session (the client left) aborts the demultiplexer and so ends the
    // connection, which tells the shim.
    let demux = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        let mut frames = skiff_stream::frames::Frames::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            while let Some((stream, data)) = frames.next_frame() {
                let to = if Channel::from_number(stream) == Some(Channel::Stderr) { &mut err_w } else { &mut out_w };
                if to.write_all(&data).await.is_err() {
                    return;
                }
            }
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => frames.push(&buf[..n]),
            }
        }
    }));
    let exit = Box::pin(async move {
        let _ = demux.await;
        0
    });
    let (stdin, resize): (Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>, _) = match input {
        Some(fd) => {
            let file = std::fs::File::from(fd);
            let resize_fd = file.try_clone().map_err(AttachError::Io)?;
            let resize = tty.then(|| crate::exec::resizer(resize_fd));
            (Some(Box::new(tokio::fs::File::from_std(file))), resize)
        }
        None => (None, None),
    };
    Ok(ExecProcess { stdin, stdout: Box::new(out_r), stderr: Box::new(err_r), exit, resize })
}
